"""The ground floor: types and contracts every other layer may import, importing none of them."""
