// Package cluster makes several hubs serve as one, coordinated by NATS:
// a hub joins a NATS cluster (external servers, or one embedded in the
// process with routes to the other hubs' embedded servers) and keeps two
// JetStream key-value buckets with its peers:
//
//   - rtmphub_nodes: node name → its advertise address and load, written
//     every heartbeat; a record outlives its last heartbeat by the TTL,
//     so a node that died leaves the membership within it.
//   - rtmphub_streams: app.instance.stream (each part base64url-encoded,
//     NATS keys allow few characters) → the node that publishes it. A
//     publisher claims its name with Create (only if absent) and its hub
//     refreshes the claim while the stream is published there; a second
//     publisher on another hub is refused while the owner is alive, unless
//     the owner marked the claim vanished (its publisher dropped and may
//     come back anywhere within the grace): then the new hub takes it over
//     with compare-and-set. Every hub watches the bucket, so that its pulls
//     follow their stream.
//   - rtmphub_owners: app.instance → the hub that owns the application
//     instance (owners.go): a lease taken with Create when a client
//     connects to an instance no live hub owns, renewed with
//     compare-and-set every OwnerTTL/3 (default TTL 3s), deleted when
//     the owner's instance ends. The other hubs with clients of the
//     instance look it up every OwnerTTL/6 and one of them takes it when
//     it lapsed (its owner died): a new owner within OwnerTTL and a sixth.
//
// A fourth bucket, rtmphub_sharedobjects (on disk, no TTL), keeps the
// persistent shared objects of the hubs' instances; the owner of an
// instance holds its shared objects, and the other hubs forward their
// clients' shared object messages to it over core NATS (sorelay.go). The
// owner alone runs the instance's application (main.asc); the other hubs'
// clients connect to it, call it and are called by it through their hub,
// whose stream events (a client's publish and unpublish: onPublish,
// onUnpublish) it hears too (apprelay.go). A hub that only pulls a stream
// of an instance runs no application for it.
//
// Media does not go through NATS: a hub with local readers of a stream
// published on another hub pulls it once over RTMP from the owner's
// advertise address (package cluster/pull) and publishes it into its own
// live stream, whose GOP cache and fan-out serve the local readers. The
// pull carries an HMAC of the cluster's shared secret that the origin's
// authorizer accepts in place of its own checks (the edge authorized its
// readers already); nothing else bypasses them.
//
// Failures: when the owner of a stream dies, its edges' pulls fail and,
// once its claim expired, find no owner; they keep their publication open
// for the hub's publisher grace (Config.Grace), so that their readers wait
// for an encoder that reconnects to any hub, as on one hub. When NATS is
// unreachable every hub keeps serving what it has and allows publishes;
// when it is back, a hub makes the buckets again (a restarted server lost
// them: they are in memory) and its heartbeat and claims fill them.
//
// The session core knows none of this: it asks a session.Cluster (Node
// implements it) to claim, release and want streams, and a
// session.InstanceOwners (Node too) who owns an instance; nil ones are a
// hub alone.
package cluster
