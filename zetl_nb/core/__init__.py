"""Shared value types at the bottom of the house: errors, ARNs, states, events.

Nothing here imports anything else of zetl_nb.
"""
