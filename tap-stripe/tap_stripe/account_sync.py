"""Many accounts in one run: several accounts at once, each with all its tables at once
(``at_once.py``), an account that fails not stopping the others.

An account can fail on its own (its access revoked, a table it refuses): the others go
on and commit their data, and the run ends with one error line naming the accounts that
failed, so the exit is non-zero and nothing read is lost. A signal stops every account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from tap_stripe import shutdown
from tap_stripe.accounts import Account
from tap_stripe.client import Cancelled, StripeError

# Accounts named in the error line of a run where some failed.
NAMED_FAILURES = 3


def sync_accounts(
    accounts: Sequence[Account],
    sync_one: Callable[[Account], None],
    *,
    at_once: int,
    logger: logging.Logger,
) -> None:
    """Run ``sync_one`` for every account, ``at_once`` at a time, in order; raise once all
    have ended if any failed (its own error when only one account is read)."""
    if len(accounts) == 1:
        sync_one(accounts[0])
        return
    failures: list[tuple[Account, BaseException]] = []
    started_at = time.monotonic()
    done = 0

    def one(account: Account) -> None:
        if not shutdown.stopping():
            sync_one(account)

    with ThreadPoolExecutor(max(1, at_once), thread_name_prefix="tap-stripe-account") as pool:
        pending: dict[Future[None], Account] = {
            pool.submit(one, account): account for account in accounts
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                account = pending.pop(future)
                error = future.exception()
                done += 1
                if error is None or isinstance(error, Cancelled):
                    logger.info(
                        "account %s: done (%d of %d accounts, %.0f s)",
                        account.id,
                        done,
                        len(accounts),
                        time.monotonic() - started_at,
                    )
                    continue
                failures.append((account, error))
                logger.error("account %s failed: %s; the other accounts go on", account.id, error)
    if failures:
        raise _failed(failures, len(accounts))


def _failed(failures: list[tuple[Account, BaseException]], total: int) -> BaseException:
    """The error ending a run where ``failures`` failed: a bug's own exception (its
    traceback kept), else one line naming them."""
    for _, error in failures:
        if not isinstance(error, StripeError):
            return error
    named = "; ".join(f"{account.id}: {error}" for account, error in failures[:NAMED_FAILURES])
    more = len(failures) - NAMED_FAILURES
    return StripeError(
        f"{len(failures)} of {total} accounts failed (the others' data is written): {named}"
        + (f"; and {more} more (see the log)" if more > 0 else "")
    )
