// One MuSig2 cosigner on @scure/btc-signer's musig2 module, the library @arkade-os/sdk signs
// VTXO trees with, used the way the SDK's musig2/{keys,sign}.ts wrappers use it: keys sorted,
// the x-only TapTweak of the sweep tapscript root as the only tweak. test_musig2_sdk.py drives
// it against arkrelay_arkd.musig2.
//
// Usage: node musig_peer.mjs WALLET_JS_DIR  (the npm project whose node_modules hold the
// library). Reads one JSON request per line on stdin, writes one JSON answer per line; all
// byte strings are hex. The secret key and secret nonces never leave this process.

import { createInterface } from "node:readline";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = join(process.argv[2], "node_modules");
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const musig = await load("@scure/btc-signer/musig2.js");
const { schnorr, secp256k1 } = await load("@noble/curves/secp256k1.js");

const hex = {
    decode: (s) => Uint8Array.from(Buffer.from(s, "hex")),
    encode: (b) => Buffer.from(b).toString("hex"),
};
const compareHex = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

const secretKey = secp256k1.utils.randomSecretKey();
const publicKey = secp256k1.getPublicKey(secretKey, true);
// Secret nonces by session name; each is deleted when it is used.
const secNonces = new Map();

// The SDK's aggregate: sorted keys, and with a script root the TapTweak of the untweaked key.
function aggregate(pubkeys, root) {
    const keys = musig.sortKeys(pubkeys.map(hex.decode));
    const plain = musig.keyAggregate(keys).aggPublicKey.toBytes(true);
    if (root === null) return { keys, tweaks: [], plain, final: plain };
    const tweak = schnorr.utils.taggedHash("TapTweak", plain.subarray(1), hex.decode(root));
    const final = musig.keyAggregate(keys, [tweak], [true]).aggPublicKey.toBytes(true);
    return { keys, tweaks: [tweak], plain, final };
}

function session(req) {
    const { keys, tweaks, final } = aggregate(req.pubkeys, req.root);
    const xonly = tweaks.map(() => true);
    const s = new musig.Session(hex.decode(req.aggnonce), keys, hex.decode(req.msg), tweaks, xonly);
    return { session: s, keys, final };
}

const ops = {
    key: () => ({ pubkey: hex.encode(publicKey) }),

    aggregate: (req) => {
        const { plain, final } = aggregate(req.pubkeys, req.root);
        return { plain: hex.encode(plain), final: hex.encode(final) };
    },

    // As the SDK's generateNonces: only our public key goes into the nonce.
    nonce: (req) => {
        const nonces = musig.nonceGen(publicKey);
        secNonces.set(req.name, nonces.secret);
        return { pubnonce: hex.encode(nonces.public) };
    },

    nonce_agg: (req) => ({
        aggnonce: hex.encode(musig.nonceAggregate(req.pubnonces.map(hex.decode))),
    }),

    sign: (req) => {
        const secNonce = secNonces.get(req.name);
        if (secNonce === undefined) throw new Error(`no secret nonce for ${req.name}`);
        secNonces.delete(req.name);
        return { psig: hex.encode(session(req).session.sign(secNonce, secretKey)) };
    },

    // As the SDK's partialSigVerify: keys and their nonces sorted together, the signer found
    // by its key.
    verify: (req) => {
        const signers = req.pubkeys
            .map((pubkey, i) => ({ pubkey, pubnonce: req.pubnonces[i] }))
            .sort((a, b) => compareHex(a.pubkey, b.pubkey));
        const index = signers.findIndex((s) => s.pubkey === req.signer);
        if (index === -1) throw new Error("signer is not a cosigner");
        const ok = session(req).session.partialSigVerify(
            hex.decode(req.psig),
            signers.map((s) => hex.decode(s.pubnonce)),
            index,
        );
        return { ok };
    },

    // psigs in the order of the sorted keys.
    sig_agg: (req) => {
        const { session: s, final } = session(req);
        const sig = s.partialSigAgg(req.psigs.map(hex.decode));
        const valid = schnorr.verify(sig, hex.decode(req.msg), final.subarray(1));
        return { sig: hex.encode(sig), valid };
    },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
    let answer;
    try {
        const req = JSON.parse(line);
        const op = ops[req.op];
        if (op === undefined) throw new Error(`unknown op ${req.op}`);
        answer = op(req);
    } catch (err) {
        answer = { error: String(err?.message ?? err) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
}
