"""Built-in plugins that are neither filters nor channels: alert building and routing."""
