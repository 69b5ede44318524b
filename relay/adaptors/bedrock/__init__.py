"""AWS Bedrock: Claude via InvokeModel (Anthropic Messages bodies), other models via Converse."""
