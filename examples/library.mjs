// vmm as a library from plain Node 20+ (README "Library use"; also valid TypeScript).
import { load, train, evaluate, saveWeights, loadWeights, sample } from 'vmm';

const source = `
model vae
data x : binary[784]
param mu : real[8] = zeros
net enc = mlp(784, 64, 16)
net dec = mlp(8, 64, 784)
latent z : real[8] ~ Normal(loc: mu, scale: 1)
observe x ~ Bernoulli(logits: dec(z))
guide { z ~ Normal(enc(x)) }
train { estimator = iwae(k: 1)  dataset = mnist }`;

const model = await load(source, { batch: 32 }); // compiles; picks a backend if none is selected
const last = await train(model, { steps: 50 }); // or for await (const m of train(...)); { signal, stream }
console.log(`bound after ${last.step} steps: ${last.bound.toFixed(1)} nats`);
console.log(`held-out bound: ${(await evaluate(model, { examples: 128 })).bound.toFixed(1)} nats`);
await saveWeights(model, 'vae.safetensors'); // loads in NumPy/PyTorch with the safetensors package
loadWeights(model, 'vae.safetensors');
console.log(`sampled ${sample(model, { count: 4 }).shape.join(' x ')} pixel means`);
