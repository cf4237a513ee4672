// @arkade-os/sdk wallets, driven one step at a time by a Python test.
//
//   node scenario.mjs --ark URL --esplora URL
//
// stdin: one JSON request a line, {"id": n, "op": "...", ...}; stdout: one JSON answer a
// line, {"id": n, "ok": true, "result": ...} or {"id": n, "ok": false, "error": "..."}.
// Requests run one after another. SDK log noise goes to stderr.
//
// ops:
//   create  {name, secret}        Wallet.create with a SingleKey (hex secret), in-memory
//                                  storage, the Ark server and Esplora URLs given
//                                  -> {pubkey, address, boarding_address}
//   balance {name}                 wallet.getBalance()
//   wait_balance {name, field, value, within}  getBalance until balance[field] == value
//                                  (within seconds, 45 by default)
//   vtxos   {name}                 wallet.getVtxos(): [{txid, vout, value, state, script}]
//   settle  {name}                 wallet.settle() (boarding UTXOs and VTXOs) -> {txid}
//   send    {name, address, amount} wallet.sendBitcoin() -> {txid}
//   faucet  {address, amount}      the chain simulator's POST /sim/faucet -> {txid, vout}
//   mine    {blocks}               the chain simulator's POST /sim/mine -> {height}
//   decode_address {address}       ArkAddress.decode -> {server_pubkey, vtxo_taproot_key, hrp}
//   close                          dispose every wallet and exit
import { parseArgs } from "node:util";
import { createInterface } from "node:readline";
import { EventSource } from "eventsource";
import {
    ArkAddress,
    InMemoryContractRepository,
    InMemoryWalletRepository,
    SingleKey,
    Wallet,
} from "@arkade-os/sdk";
import { hex } from "@scure/base";

// The SDK reads server-sent event streams with the browser's EventSource, which node
// has as a global only from version 22 (behind a flag) on.
globalThis.EventSource ??= EventSource;

const { values: args } = parseArgs({
    options: { ark: { type: "string" }, esplora: { type: "string" } },
});
if (!args.ark || !args.esplora) {
    console.error("usage: scenario.mjs --ark URL --esplora URL");
    process.exit(2);
}

const wallets = new Map();

function wallet(name) {
    const found = wallets.get(name);
    if (!found) throw new Error(`no wallet named ${name}`);
    return found;
}

async function chainAdmin(path, body) {
    const response = await fetch(new URL(path, args.esplora), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
}

const ops = {
    async create({ name, secret }) {
        const identity = SingleKey.fromHex(secret);
        const created = await Wallet.create({
            identity,
            arkServerUrl: args.ark,
            esploraUrl: args.esplora,
            storage: {
                walletRepository: new InMemoryWalletRepository(),
                contractRepository: new InMemoryContractRepository(),
            },
            // The scenario settles when it says so: the SDK's background manager would
            // otherwise settle new boarding coins on its own poll, racing the test.
            settlementConfig: false,
        });
        wallets.set(name, created);
        return {
            pubkey: hex.encode(await identity.xOnlyPublicKey()),
            address: await created.getAddress(),
            boarding_address: await created.getBoardingAddress(),
        };
    },
    async balance({ name }) {
        return wallet(name).getBalance();
    },
    async vtxos({ name }) {
        const vtxos = await wallet(name).getVtxos();
        return vtxos.map((v) => ({
            txid: v.txid,
            vout: v.vout,
            value: v.value,
            state: v.virtualStatus?.state ?? null,
            script: v.script ?? null,
        }));
    },
    async settle({ name }) {
        return { txid: await wallet(name).settle() };
    },
    async send({ name, address, amount }) {
        return { txid: await wallet(name).sendBitcoin({ address, amount }) };
    },
    // Poll getBalance until its `field` equals `value` (the wallet learns of incoming
    // VTXOs from the indexer's script subscription, so asynchronously).
    async wait_balance({ name, field, value, within = 45 }) {
        const deadline = Date.now() + within * 1000;
        let balance = await wallet(name).getBalance();
        while (balance[field] !== value) {
            if (Date.now() > deadline) {
                throw new Error(
                    `${name}'s ${field} balance is ${balance[field]}, not ${value}, after ` +
                        `${within} s: ${JSON.stringify(balance)}`,
                );
            }
            await new Promise((resolve) => setTimeout(resolve, 200));
            balance = await wallet(name).getBalance();
        }
        return balance;
    },
    async faucet({ address, amount }) {
        return chainAdmin("/sim/faucet", { address, amount });
    },
    async mine({ blocks }) {
        return chainAdmin("/sim/mine", { blocks });
    },
    async decode_address({ address }) {
        const decoded = ArkAddress.decode(address);
        return {
            server_pubkey: hex.encode(decoded.serverPubKey),
            vtxo_taproot_key: hex.encode(decoded.vtxoTaprootKey),
            hrp: decoded.hrp,
            version: decoded.version,
        };
    },
};

function answer(message) {
    process.stdout.write(
        JSON.stringify(message, (_, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n",
    );
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    if (request.op === "close") {
        for (const w of wallets.values()) await w.dispose();
        answer({ id: request.id, ok: true, result: null });
        break;
    }
    const op = ops[request.op];
    try {
        if (!op) throw new Error(`unknown op ${request.op}`);
        answer({ id: request.id, ok: true, result: await op(request) });
    } catch (err) {
        answer({ id: request.id, ok: false, error: String(err?.stack ?? err) });
    }
}
process.exit(0);
