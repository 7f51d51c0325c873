"""A data exchange engine: rule-governed catalogue, trading and a verifiable ledger."""
