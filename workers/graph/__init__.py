"""Microsoft Graph access for the workers: msgraph-sdk over azure-identity, on one event loop."""
