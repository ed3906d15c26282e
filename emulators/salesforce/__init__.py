"""A local Salesforce REST API emulator (DESIGN §7) that simple-salesforce runs against."""
