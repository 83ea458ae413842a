"""The bottom layer: types every other part of jupyter_medagent shares, importing nothing above them."""
