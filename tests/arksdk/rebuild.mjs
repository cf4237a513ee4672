// Rebuild ark txs and their checkpoints with @arkade-os/sdk's buildOffchainTx.
//
// stdin: {"txs": [entry, ...]}, each entry one accepted submission from the arkd
// simulator's journal (plugins/arkd/arkrelay_arkd/sim/journal.py): the spent VTXOs
// (outpoint, amount, tapscripts, spending leaf), the outputs, the server's unroll closure
// and signer key. stdout: one JSON object, for each entry what the SDK built from those
// inputs: the PSBTs, the txids the SDK computes, the BIP341 sighash of every input (the
// SDK's Transaction.preimageWitnessV1), and for each input the pkScript of the SDK's own
// default VTXO script for the same owner, server key and exit delay. The Python side
// (tests/arksdk/judge.py) compares all of it with what the gateway submitted.
import {
    buildOffchainTx,
    CSVMultisigTapscript,
    DefaultVtxo,
    MultisigTapscript,
    VtxoScript,
    decodeTapscript,
} from "@arkade-os/sdk";
import { base64, hex } from "@scure/base";
import { SigHash } from "@scure/btc-signer";

async function readStdin() {
    const chunks = [];
    for await (const chunk of process.stdin) chunks.push(chunk);
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

// What the SDK signs for each input: BIP341 script-path sighash over the input's one leaf.
function sighashes(tx) {
    const scripts = [];
    const amounts = [];
    for (let i = 0; i < tx.inputsLength; i++) {
        const utxo = tx.getInput(i).witnessUtxo;
        scripts.push(utxo.script);
        amounts.push(utxo.amount);
    }
    const out = [];
    for (let i = 0; i < tx.inputsLength; i++) {
        const [, scriptWithVersion] = tx.getInput(i).tapLeafScript[0];
        const script = scriptWithVersion.subarray(0, -1);
        const version = scriptWithVersion[scriptWithVersion.length - 1];
        const digest = tx.preimageWitnessV1(
            i,
            scripts,
            SigHash.DEFAULT,
            amounts,
            undefined,
            script,
            version,
        );
        out.push(hex.encode(digest));
    }
    return out;
}

function describe(tx) {
    return { txid: tx.id, psbt: base64.encode(tx.toPSBT()), sighashes: sighashes(tx) };
}

// The pkScript of DefaultVtxo.Script for the owner and exit delay these tapscripts name,
// or null when they are not a multisig leaf plus a one-key CSV leaf.
function defaultVtxoScript(tapscripts, signer) {
    let owner = null;
    let timelock = null;
    for (const script of tapscripts) {
        const decoded = decodeTapscript(hex.decode(script));
        if (CSVMultisigTapscript.is(decoded) && decoded.params.pubkeys.length === 1) {
            owner = decoded.params.pubkeys[0];
            timelock = decoded.params.timelock;
        } else if (!MultisigTapscript.is(decoded)) {
            return null;
        }
    }
    if (owner === null) return null;
    const vtxo = new DefaultVtxo.Script({
        pubKey: owner,
        serverPubKey: hex.decode(signer),
        csvTimelock: timelock,
    });
    return hex.encode(vtxo.pkScript);
}

function rebuild(entry) {
    const unroll = CSVMultisigTapscript.decode(hex.decode(entry.checkpoint_tapscript));
    const inputs = entry.inputs.map((input) => {
        const vtxoScript = new VtxoScript(input.tapscripts.map((s) => hex.decode(s)));
        return {
            txid: input.txid,
            vout: input.vout,
            value: input.amount,
            tapTree: vtxoScript.encode(),
            tapLeafScript: vtxoScript.findLeaf(input.leaf),
        };
    });
    const outputs = entry.outputs.map((o) => ({
        script: hex.decode(o.script),
        amount: BigInt(o.amount),
    }));
    const { arkTx, checkpoints } = buildOffchainTx(inputs, outputs, unroll);
    return {
        ark_tx: describe(arkTx),
        checkpoints: checkpoints.map(describe),
        default_vtxo_scripts: entry.inputs.map((input) =>
            defaultVtxoScript(input.tapscripts, entry.signer_pubkey),
        ),
    };
}

const request = await readStdin();
const results = request.txs.map((entry) => {
    try {
        return { ark_txid: entry.ark_txid, sdk: rebuild(entry), error: null };
    } catch (err) {
        return { ark_txid: entry.ark_txid, sdk: null, error: String(err?.stack ?? err) };
    }
});
process.stdout.write(JSON.stringify({ results }) + "\n");
