//! Pub/sub commands: (P|S)SUBSCRIBE (P|S)UNSUBSCRIBE PUBLISH SPUBLISH
//! PUBSUB. The registry and delivery live in `crate::pubsub`; replies are
//! Redis 7.0's: one `subscribe`/`unsubscribe` frame per channel (a push
//! in RESP3) carrying the client's subscription count after it.

use std::sync::atomic::Ordering::Relaxed;

use super::flags::*;
use super::{cmd, container, CmdResult, CommandSpec, Ctx};
use crate::pubsub::{Kind, Subscriber};

const fn ps(mut c: CommandSpec) -> CommandSpec {
    c.group = "pubsub";
    c.since = "2.0.0";
    c
}

const fn shard_keys(mut c: CommandSpec, last: i32) -> CommandSpec {
    c.first_key = 1;
    c.last_key = last;
    c.step = 1;
    c.since = "7.0.0";
    c
}

pub static COMMANDS: &[CommandSpec] = &[
    ps(cmd(
        "subscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        subscribe,
    )),
    ps(cmd(
        "unsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        unsubscribe,
    )),
    ps(cmd(
        "psubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        psubscribe,
    )),
    ps(cmd(
        "punsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE,
        punsubscribe,
    )),
    ps(cmd("publish", 3, PUBSUB | LOADING | STALE | FAST, publish)),
    shard_keys(
        ps(cmd(
            "ssubscribe",
            -2,
            PUBSUB | NOSCRIPT | LOADING | STALE,
            ssubscribe,
        )),
        -1,
    ),
    shard_keys(
        ps(cmd(
            "sunsubscribe",
            -1,
            PUBSUB | NOSCRIPT | LOADING | STALE,
            sunsubscribe,
        )),
        -1,
    ),
    shard_keys(
        ps(cmd(
            "spublish",
            3,
            PUBSUB | LOADING | STALE | FAST,
            spublish,
        )),
        1,
    ),
    CommandSpec {
        subcommands: &[
            ps(cmd("channels", -2, PUBSUB | LOADING | STALE, channels)),
            ps(cmd("numsub", -2, PUBSUB | LOADING | STALE, numsub)),
            ps(cmd("numpat", 2, PUBSUB | LOADING | STALE, numpat)),
            CommandSpec {
                since: "7.0.0",
                ..ps(cmd(
                    "shardchannels",
                    -2,
                    PUBSUB | LOADING | STALE,
                    shardchannels,
                ))
            },
            CommandSpec {
                since: "7.0.0",
                ..ps(cmd(
                    "shardnumsub",
                    -2,
                    PUBSUB | LOADING | STALE,
                    shardnumsub,
                ))
            },
            ps(cmd("help", 2, LOADING | STALE, help)),
        ],
        ..ps(cmd("pubsub", -2, 0, container))
    },
];

/// This connection's delivery queue, created on first use.
pub fn sub_handle(ctx: &mut Ctx<'_>) -> std::sync::Arc<Subscriber> {
    if let Some(s) = &ctx.client.sub {
        return s.clone();
    }
    let s = Subscriber::new(
        ctx.client.handle.clone(),
        ctx.out.resp3,
        ctx.srv.pubsub.limits.clone(),
    );
    ctx.srv.tracking.register_target(ctx.client.handle.id, &s);
    ctx.client.sub = Some(s.clone());
    s
}

fn list<'c>(ctx: &'c mut Ctx<'_>, k: Kind) -> &'c mut Vec<Vec<u8>> {
    match k {
        Kind::Channel => &mut ctx.client.subs.channels,
        Kind::Pattern => &mut ctx.client.subs.patterns,
        Kind::Shard => &mut ctx.client.subs.shard,
    }
}

/// Mirrors the subscription counts into the handle (CLIENT LIST).
fn publish_counts(client: &crate::client::ClientState) {
    let h = &client.handle.sub_counts;
    h[0].store(client.subs.channels.len() as u32, Relaxed);
    h[1].store(client.subs.patterns.len() as u32, Relaxed);
    h[2].store(client.subs.shard.len() as u32, Relaxed);
}

fn count(ctx: &Ctx<'_>, k: Kind) -> i64 {
    match k {
        Kind::Shard => ctx.client.subs.shard.len() as i64,
        _ => ctx.client.subs.count() as i64,
    }
}

fn sub_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], k: Kind, word: &[u8]) -> CmdResult {
    let s = sub_handle(ctx);
    for name in &a[1..] {
        if !list(ctx, k).iter().any(|c| c.as_slice() == *name) {
            list(ctx, k).push(name.to_vec());
            ctx.srv.pubsub.subscribe(k, name, &s);
            publish_counts(ctx.client);
        }
        let n = count(ctx, k);
        ctx.out.push(3);
        ctx.out.bulk(word);
        ctx.out.bulk(name);
        ctx.out.int(n);
    }
    Ok(())
}

fn unsub_one(ctx: &mut Ctx<'_>, k: Kind, word: &[u8], name: &[u8]) {
    let l = list(ctx, k);
    if let Some(i) = l.iter().position(|c| c.as_slice() == name) {
        l.remove(i);
        if let Some(s) = ctx.client.sub.clone() {
            ctx.srv.pubsub.unsubscribe(k, name, &s);
        }
        publish_counts(ctx.client);
    }
    let n = count(ctx, k);
    ctx.out.push(3);
    ctx.out.bulk(word);
    ctx.out.bulk(name);
    ctx.out.int(n);
}

fn unsub_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], k: Kind, word: &[u8]) -> CmdResult {
    if a.len() > 1 {
        for name in &a[1..] {
            unsub_one(ctx, k, word, name);
        }
        return Ok(());
    }
    let all = list(ctx, k).clone();
    if all.is_empty() {
        let n = count(ctx, k);
        ctx.out.push(3);
        ctx.out.bulk(word);
        ctx.out.null();
        ctx.out.int(n);
    }
    for name in all {
        unsub_one(ctx, k, word, &name);
    }
    Ok(())
}

/// Drops every subscription without replies (RESET, disconnect).
pub fn unsubscribe_all(srv: &crate::shared::Shared, client: &mut crate::client::ClientState) {
    srv.tracking.disable(client.handle.id);
    client.tracking = None;
    let Some(s) = client.sub.take() else { return };
    srv.monitors.remove(&s);
    srv.tracking.unregister_target(client.handle.id);
    for (k, l) in [
        (Kind::Channel, &mut client.subs.channels),
        (Kind::Pattern, &mut client.subs.patterns),
        (Kind::Shard, &mut client.subs.shard),
    ] {
        for name in l.drain(..) {
            srv.pubsub.unsubscribe(k, &name, &s);
        }
    }
    publish_counts(client);
}

fn subscribe(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    sub_generic(ctx, a, Kind::Channel, b"subscribe")
}

fn psubscribe(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    sub_generic(ctx, a, Kind::Pattern, b"psubscribe")
}

fn ssubscribe(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    sub_generic(ctx, a, Kind::Shard, b"ssubscribe")
}

fn unsubscribe(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    unsub_generic(ctx, a, Kind::Channel, b"unsubscribe")
}

fn punsubscribe(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    unsub_generic(ctx, a, Kind::Pattern, b"punsubscribe")
}

fn sunsubscribe(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    unsub_generic(ctx, a, Kind::Shard, b"sunsubscribe")
}

fn publish(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let n = ctx.srv.pubsub.publish(a[1], a[2]);
    ctx.out.int(n as i64);
    Ok(())
}

fn spublish(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    let n = ctx.srv.pubsub.spublish(a[1], a[2]);
    ctx.out.int(n as i64);
    Ok(())
}

fn channels_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], k: Kind) -> CmdResult {
    if a.len() > 3 {
        return Err(super::client::subcommand_syntax_error(a));
    }
    let v = ctx.srv.pubsub.channels(k, a.get(2).copied());
    ctx.out.array(v.len());
    for c in &v {
        ctx.out.bulk(c);
    }
    Ok(())
}

fn channels(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    channels_generic(ctx, a, Kind::Channel)
}

fn shardchannels(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    channels_generic(ctx, a, Kind::Shard)
}

fn numsub_generic(ctx: &mut Ctx<'_>, a: &[&[u8]], k: Kind) -> CmdResult {
    ctx.out.array((a.len() - 2) * 2);
    for c in &a[2..] {
        ctx.out.bulk(c);
        ctx.out.int(ctx.srv.pubsub.numsub(k, c) as i64);
    }
    Ok(())
}

fn numsub(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    numsub_generic(ctx, a, Kind::Channel)
}

fn shardnumsub(ctx: &mut Ctx<'_>, a: &[&[u8]]) -> CmdResult {
    numsub_generic(ctx, a, Kind::Shard)
}

fn numpat(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    ctx.out.int(ctx.srv.pubsub.numpat() as i64);
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _a: &[&[u8]]) -> CmdResult {
    super::keys::help_reply(
        ctx,
        "pubsub",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}

/// Keeps the registry's view of the client's protocol current (HELLO).
pub fn sync_protocol(client: &crate::client::ClientState, resp3: bool) {
    if let Some(s) = &client.sub {
        s.resp3.store(resp3, Relaxed);
    }
}
