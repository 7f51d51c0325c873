"""Orders, books, auctions, contracts."""
