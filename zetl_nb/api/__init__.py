"""What users call: boto3-shaped clients and the local AWS endpoint."""
