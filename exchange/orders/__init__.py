"""Orders, books, auctions, contracts."""

# Registers the flush hook that keeps monthly volumes in step with contracts, for every
# path that imports anything of this package before it writes a contract.
from exchange.orders import volumes as volumes
