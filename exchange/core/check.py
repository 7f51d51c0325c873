"""Programmer-error assertions that stay on in production (unlike `assert`)."""


class CheckFailed(AssertionError):
    """A broken invariant: a bug, never a user error."""


def check(predicate: bool, message: str) -> None:
    if not predicate:
        raise CheckFailed(message)
