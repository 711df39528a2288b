/**
 * Guessing containment (pure, with a fake clock): growing waits, expiry, per-address and
 * per-account keys, and that one address can never lock an account.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { GuessGuard } from "../../src/service/guard.ts";
import { HasherBusy, PasswordHasher } from "../../src/service/hasher.ts";
import { hashPassword } from "../../src/service/secrets.ts";
import { RateLimiter } from "../../src/service/ratelimit.ts";

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => t += ms };
}

Deno.test("guard: waits start after the free failures, double, and expire", () => {
  const c = clock();
  const g = new GuessGuard({ now: c.now, pairFree: 3, baseDelayMs: 1000 });
  for (let i = 0; i < 2; i++) {
    assert(g.check("alice", "10.0.0.7").allowed);
    g.fail("alice", "10.0.0.7");
  }
  assert(g.check("alice", "10.0.0.7").allowed);
  g.fail("alice", "10.0.0.7"); // 3rd: 1 s
  const v = g.check("alice", "10.0.0.7");
  assert(!v.allowed);
  assertEquals(v.retryAfterMs, 1000);
  assertEquals(v.key, "pair:alice@10.0.0.7");
  assertEquals(g.locks().map((l) => l.key), ["pair:alice@10.0.0.7"]);
  c.advance(1000);
  assert(g.check("alice", "10.0.0.7").allowed); // expired by itself
  assertEquals(g.locks(), []);
  g.fail("alice", "10.0.0.7"); // 4th: 2 s
  assertEquals((g.check("alice", "10.0.0.7") as { retryAfterMs: number }).retryAfterMs, 2000);
  c.advance(2000);
  g.fail("alice", "10.0.0.7"); // 5th: 4 s
  assertEquals((g.check("alice", "10.0.0.7") as { retryAfterMs: number }).retryAfterMs, 4000);
  // another address is not affected
  assert(g.check("alice", "10.0.0.8").allowed);
  // a success clears the pair
  c.advance(4000);
  g.succeed("alice", "10.0.0.7");
  assert(g.check("alice", "10.0.0.7").allowed);
});

Deno.test("guard: waits are capped and counters forgotten after a quiet hour", () => {
  const c = clock();
  const g = new GuessGuard({ now: c.now, pairFree: 1, baseDelayMs: 1000, maxDelayMs: 5000 });
  for (let i = 0; i < 10; i++) {
    c.advance(60_000);
    g.fail("bob", "a");
  }
  assertEquals((g.check("bob", "a") as { retryAfterMs: number }).retryAfterMs, 5000);
  c.advance(3600_000 + 5001);
  g.fail("bob", "a"); // counted from zero again: first wait
  assertEquals((g.check("bob", "a") as { retryAfterMs: number }).retryAfterMs, 1000);
});

Deno.test("guard: one address can never lock an account; many addresses can", () => {
  const c = clock();
  const g = new GuessGuard({ now: c.now, pairFree: 3, addrFree: 1000, accountFree: 20 });
  // an attacker at one address keeps guessing whenever allowed, for two days
  let tries = 0;
  for (let i = 0; i < 48 * 3600; i++) {
    if (g.check("alice", "6.6.6.6").allowed) {
      g.fail("alice", "6.6.6.6");
      tries++;
    }
    c.advance(1000);
  }
  assert(tries < 48 * 4 + 20, `the attacker is slowed to ~4 guesses an hour (got ${tries})`);
  assert(g.check("alice", "192.168.1.5").allowed, "... but alice signs in from elsewhere");
  assert(!g.locks().some((l) => l.key === "account:alice"));
  // a spread-out attack (7 addresses x 3 failures) does lock the account, for a while
  for (let a = 0; a < 7; a++) for (let i = 0; i < 3; i++) g.fail("carol", `10.1.0.${a}`);
  const v = g.check("carol", "192.168.1.5");
  assert(!v.allowed);
  assertEquals(v.key, "account:carol");
  c.advance(v.retryAfterMs);
  assert(g.check("carol", "192.168.1.5").allowed);
});

Deno.test("guard: one address spraying many accounts is slowed on all of them", () => {
  const c = clock();
  const g = new GuessGuard({ now: c.now, pairFree: 3, addrFree: 10 });
  for (let i = 0; i < 10; i++) g.fail(`user${i}`, "6.6.6.6");
  const v = g.check("someone-else", "6.6.6.6");
  assert(!v.allowed);
  assertEquals(v.key, "addr:6.6.6.6");
});

Deno.test("rate limiter: burst, then the sustained rate, per address", () => {
  const c = clock();
  const rl = new RateLimiter({ perSecond: 2, burst: 3, now: c.now });
  assertEquals([rl.take("a"), rl.take("a"), rl.take("a")], [0, 0, 0]);
  assertEquals(rl.take("a"), 500);
  assertEquals(rl.take("b"), 0);
  c.advance(500);
  assertEquals(rl.take("a"), 0);
});

Deno.test("hasher: checks off-thread, unknown users fail, a full queue refuses at once", async () => {
  const rec = hashPassword("pw");
  const h = new PasswordHasher({ concurrency: 1, queue: 1 });
  assertEquals(await h.verify("pw", rec), true);
  assertEquals(await h.verify("nope", rec), false);
  assertEquals(await h.verify("pw", undefined), false);
  const running = [h.verify("a", rec), h.verify("b", rec)]; // one running, one waiting
  assertEquals(h.load, 2);
  await rejects(h.verify("c", rec), HasherBusy);
  assertEquals(await Promise.all(running), [false, false]);
  assertEquals(h.load, 0);
});
