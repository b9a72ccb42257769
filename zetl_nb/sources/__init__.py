"""Sources: DynamoDB, relational databases (PostgreSQL, MySQL/MariaDB) and SaaS connections."""
