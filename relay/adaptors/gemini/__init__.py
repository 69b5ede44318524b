"""Google Gemini API adaptor: IR <-> generateContent / streamGenerateContent / batchEmbedContents."""
