"""The Salesforce stage: client, schema check, mapping, matching and the two-call push."""
