// BIP 341 digests from @scure/btc-signer (the library @arkade-os/sdk signs with), for
// test_sighash_scure.py to hold arkrelay_core.bitcoin against an implementation that is
// not ours.
//
// Usage: node scure_sighash.mjs WALLET_JS_DIR  (the npm project whose node_modules hold
// the library). Reads one JSON object on stdin: {tx: hex, prevouts: [[scriptHex, sats]],
// cases: [[index, hashType, leafHex or null]]}; writes a JSON array of hex digests.

import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = join(process.argv[2], "node_modules");
const { Transaction } = await import(
    pathToFileURL(join(modules, "@scure/btc-signer/index.js")).href
);

const decode = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const encode = (b) => Buffer.from(b).toString("hex");

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);

const tx = Transaction.fromRaw(decode(request.tx), {
    allowUnknownInputs: true,
    allowUnknownOutputs: true,
    disableScriptCheck: true,
});
const scripts = request.prevouts.map(([script]) => decode(script));
const amounts = request.prevouts.map(([, sats]) => BigInt(sats));
const digests = request.cases.map(([index, hashType, leaf]) =>
    encode(
        leaf === null
            ? tx.preimageWitnessV1(index, scripts, hashType, amounts)
            : tx.preimageWitnessV1(index, scripts, hashType, amounts, -1, decode(leaf)),
    ),
);
process.stdout.write(JSON.stringify(digests));
