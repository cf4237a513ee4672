// Drives @arkade-os/sdk's own EsploraProvider against the chain simulator and prints what
// it read and what it was told, as one JSON object (test_sdk_provider.py checks it).
// Usage: node provider.mjs '<json: {url, address, fundingTxid, spend, conflict, watch, pkg}>'
import { EsploraProvider } from "@arkade-os/sdk";

const job = JSON.parse(process.argv[2]);
const provider = new EsploraProvider(job.url, { pollingInterval: 200 });
const out = {};

out.coins = await provider.getCoins(job.address);
out.fundingStatus = await provider.getTxStatus(job.fundingTxid);
out.feeRate = await provider.getFeeRate();
out.tip = await provider.getChainTip();
out.history = (await provider.getTransactions(job.address)).map((tx) => tx.txid);

// Watch the address the spend pays, then broadcast it: the watcher must report it.
const seen = new Promise((resolve) => {
    provider
        .watchAddresses([job.watch], (txs) => resolve(txs.map((tx) => tx.txid)))
        .then((stop) => (out.stopWatching = stop));
});
// The watcher's first poll lists what is already there; broadcast after it.
await new Promise((resolve) => setTimeout(resolve, 500));
out.broadcast = await provider.broadcastTransaction(job.spend);
out.watched = await Promise.race([
    seen,
    new Promise((resolve) => setTimeout(() => resolve("timeout"), 10_000)),
]);
out.stopWatching?.();
delete out.stopWatching;
out.spendStatus = await provider.getTxStatus(out.broadcast);
out.outspends = await provider.getTxOutspends(job.fundingTxid);

try {
    out.refused = await provider.broadcastTransaction(job.conflict);
} catch (error) {
    out.refused = { error: String(error.message) };
}
const result = await provider.broadcastTransaction(...job.pkg);
out.pkg = { msg: result.package_msg, txids: Object.values(result["tx-results"]).map((r) => r.txid) };

console.log(JSON.stringify(out));
process.exit(0);
