"""Azure OpenAI adaptor: deployments (Chat Completions, embeddings), the v1 Responses API, and
Claude deployments of Azure AI Foundry (Anthropic Messages)."""
