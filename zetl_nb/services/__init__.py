"""Embedded services a Lab starts on demand: a DynamoDB endpoint and a PostgreSQL."""

# Deliberately no re-exports: ``python -m zetl_nb.services.dynamodb`` runs that module as
# ``__main__``, and importing it here first would make runpy warn about a double import.
