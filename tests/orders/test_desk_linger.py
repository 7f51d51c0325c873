"""How long the order desk lingers for a batch: until about as many requests wait as were in
play around the recent batches (those batches, and what arrived while they ran), unless as many
as 3/4 of the last batch already wait."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from exchange.orders.desk import ALONE, Cancel, OrderDesk


async def test_requests_that_arrived_during_a_batch_count_towards_the_next_wave() -> None:
    """Clients in a closed loop: 30 are in a batch while 15 more arrive; the 30 come back over five
    milliseconds. Waiting only for 3/4 of the last batch (22) would start the next batch with
    those 15 and the first few returning: the two groups then take turns in half-size batches,
    each paying a whole transaction. In play around the batch were 45: the next waits for 33."""
    desk = OrderDesk(SimpleNamespace(settings=SimpleNamespace(order_batch_max=256)))  # type: ignore[arg-type]
    sizes: list[int] = []
    returning: list[asyncio.Task[Any]] = []

    def request() -> asyncio.Task[Any]:
        return asyncio.create_task(desk.place(Cancel(authorization=None, order_id="ord")))

    async def come_back(count: int) -> None:
        for _ in range(count // 6):  # six a millisecond
            await asyncio.sleep(0.001)
            returning.extend(request() for _ in range(6))

    async def settle(batch: list[Any], gathered_s: float) -> list[Any]:
        sizes.append(len(batch))
        if len(sizes) == 1:
            arrivals = [request() for _ in range(15)]  # arrive while the batch runs
            await asyncio.sleep(0)
            returning.extend(arrivals)
            returning.append(asyncio.create_task(come_back(30)))
        return [ALONE] * len(batch)

    desk._settle = settle  # type: ignore[method-assign]
    desk._recent_sizes.extend([30] * 8)  # the recent batches held 30 each
    first = [request() for _ in range(30)]
    await asyncio.gather(*first)
    for _ in range(200):
        await asyncio.sleep(0.001)
        if sum(sizes) >= 75:
            break
    await asyncio.gather(*returning)
    assert sizes[0] == 30
    assert sizes[1] >= 33, sizes  # 3/4 of the 45 in play around the first batch


async def test_a_queue_that_filled_while_the_batch_ran_goes_at_once() -> None:
    """Clients that send whether or not they were answered (an open loop, as many independent
    participants do): as many arrived while a batch of 30 ran as it held, and more keep coming,
    one a millisecond. They have already waited a whole batch: the next starts with them at
    once. Lingering until 3/4 of the 60 in play (45) had made every batch wait 15 ms more, and
    grow, and wait more: at a steady 700 orders a second offered, batches of 165 in 152 ms."""
    desk = OrderDesk(SimpleNamespace(settings=SimpleNamespace(order_batch_max=256)))  # type: ignore[arg-type]
    sizes: list[int] = []
    gathered: list[float] = []
    arriving: list[asyncio.Task[Any]] = []

    def request() -> asyncio.Task[Any]:
        return asyncio.create_task(desk.place(Cancel(authorization=None, order_id="ord")))

    async def steady(count: int) -> None:
        for _ in range(count):
            await asyncio.sleep(0.001)
            arriving.append(request())

    async def settle(batch: list[Any], gathered_s: float) -> list[Any]:
        sizes.append(len(batch))
        gathered.append(gathered_s)
        if len(sizes) == 1:
            arriving.extend(request() for _ in range(30))  # arrived while the batch ran
            await asyncio.sleep(0)
            arriving.append(asyncio.create_task(steady(40)))
        return [ALONE] * len(batch)

    desk._settle = settle  # type: ignore[method-assign]
    desk._recent_sizes.extend([60] * 8)  # the recent batches, and what arrived while they ran
    await asyncio.gather(*(request() for _ in range(30)))
    while len(sizes) < 2:
        await asyncio.sleep(0.001)
    assert sizes[1] <= 32, sizes  # the 30 that waited (and at most a straggler or two), not 45
    assert gathered[1] < 0.002, gathered
    for task in list(arriving):
        await task


async def test_a_desk_that_breaks_fails_its_batch_and_sends_the_waiting_requests_alone() -> None:
    """A bug after a batch (here: an answer missing) must not leave requests waiting for ever:
    the batch's requests, which may have been placed, fail; those that arrived while it ran were
    in no batch and go the single-order way."""
    desk = OrderDesk(SimpleNamespace(settings=SimpleNamespace(order_batch_max=256)))  # type: ignore[arg-type]
    later: list[asyncio.Task[Any]] = []

    def request() -> asyncio.Task[Any]:
        return asyncio.create_task(desk.place(Cancel(authorization=None, order_id="ord")))

    async def settle(batch: list[Any], gathered_s: float) -> list[Any]:
        later.extend(request() for _ in range(3))  # arrive while the batch runs
        await asyncio.sleep(0)
        return [ALONE] * (len(batch) - 1)  # one answer short

    desk._settle = settle  # type: ignore[method-assign]
    first = [request() for _ in range(4)]
    done = await asyncio.wait_for(asyncio.gather(*first, return_exceptions=True), timeout=5)
    assert done[:3] == [ALONE] * 3 and isinstance(done[3], RuntimeError), done  # the answers it had went out
    assert await asyncio.wait_for(asyncio.gather(*later), timeout=5) == [ALONE] * 3
    assert desk._running is None and desk._waiting == []
