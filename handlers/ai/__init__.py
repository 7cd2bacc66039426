"""AI providers behind one port: offline (embedded default), Gemini, OpenAI."""
