"""The rulebook: the exchange's rules as data. Operators edit rules/*.toml; model.py types them,
load.py decodes and validates a set, evaluate.py judges listings against it. The core here is
pure: callers read the files and pass their text in."""
