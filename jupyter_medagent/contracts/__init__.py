"""The ground floor: types, events, errors and vocabularies every other layer shares.

Nothing here imports from the rest of jupyter_medagent (the import-linter contracts in pyproject.toml
hold it to that), so any layer may import it without pulling in the layers above.
"""
