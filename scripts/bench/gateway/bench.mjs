// Official @hyperledger/fabric-gateway client under the same load as bench.py: N submits of Sample:Put
// and N evaluates of Sample:Get from C concurrent workers over one gRPC connection. Prints one JSON line.
// Usage: node bench.mjs <connection.json> <channel> <transactions> <concurrency> <key-prefix>
import * as grpc from '@grpc/grpc-js';
import { connect, hash, signers } from '@hyperledger/fabric-gateway';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [profilePath, channel, txArg, concArg, prefix] = process.argv.slice(2);
const transactions = Number(txArg);
const concurrency = Number(concArg);
const profile = JSON.parse(readFileSync(profilePath, 'utf8'));
const user = profile.identities.user;

const client = new grpc.Client(
  profile.peer.endpoint,
  grpc.credentials.createSsl(readFileSync(profile.peer.tls_ca_cert)),
  profile.peer.host_override ? { 'grpc.ssl_target_name_override': profile.peer.host_override } : {},
);
const gateway = connect({
  client,
  identity: { mspId: profile.mspid, credentials: readFileSync(user.cert) },
  signer: signers.newPrivateKeySigner(createPrivateKey(readFileSync(user.key))),
  hash: hash.sha256,
});
const contract = gateway.getNetwork(channel).getContract('swarmfuse');

// Run job(i) for i in [0, count) on `concurrency` workers; per-call latencies in milliseconds.
async function load(count, job) {
  let next = 0;
  const latencies = [];
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      await job(i);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return latencies;
}

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

try {
  await load(concurrency, (i) => contract.submitTransaction('Sample:Put', `${prefix}-warm-${i}`, 'w'));
  const t0 = process.hrtime.bigint();
  await load(transactions, (i) => contract.submitTransaction('Sample:Put', `${prefix}-${i}`, `value-${i}`));
  const submitSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await load(concurrency, (i) => contract.evaluateTransaction('Sample:Get', `${prefix}-${i}`));
  const evaluations = (await load(transactions, (i) => contract.evaluateTransaction('Sample:Get', `${prefix}-${i}`)))
    .sort((a, b) => a - b);
  console.log(JSON.stringify({
    client: 'node @hyperledger/fabric-gateway',
    submit_tps: transactions / submitSeconds,
    evaluate_p50_ms: percentile(evaluations, 0.5),
    evaluate_p99_ms: percentile(evaluations, 0.99),
  }));
} finally {
  gateway.close();
  client.close();
}
