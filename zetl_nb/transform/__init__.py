"""Transforms between source and target: data filters, identifier rules, type mapping, unnesting."""
