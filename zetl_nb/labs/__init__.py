"""The worked labs as plain steps: the notebooks explain them, ``zetl-nb demo`` runs them.

- :mod:`.sentiment` — notebook ``03_sentiment_analysis``: customers and transactions replicate
  from the embedded PostgreSQL ("Aurora"), products and reviews from DynamoDB, an LLM classifies
  each review in SQL and drafts a reply per customer, and a change written at the source flows
  through to a new reply.

Each step is a small function over a :class:`~zetl_nb.Lab` making the calls an attendee would
(boto3-shaped clients, SQL through ``lab.sql``); the SQL is kept in named constants, so the
notebook shows exactly what the demo runs.
"""

from __future__ import annotations
