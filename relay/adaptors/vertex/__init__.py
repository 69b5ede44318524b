"""Google Vertex AI adaptor: Gemini (generateContent) and Claude (rawPredict) models, with
OAuth tokens from a service-account key."""
