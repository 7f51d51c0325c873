"""Server-rendered pages: the catalogue, accounts, the console, the ledger explorer."""
