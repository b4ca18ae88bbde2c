// Aggregation throughput: the package's `aggregate` with number extraction
// against a plain JavaScript tally (a regular expression for the last number,
// a Map of counts) over the same generated answers, taking turns.
//
// Usage: node clients/aggregate.mjs ANSWERS ROUNDS
import {performance} from 'node:perf_hooks';
import {aggregate, custom, vote} from 'parallel-task-executor';
import {printResult} from '../lib/process.mjs';
import {mulberry32} from '../lib/random.mjs';

const [count, rounds] = process.argv.slice(2).map(Number);

// Short replies in several shapes. The answer is always the last number, and a
// few replies contain no number at all.
const VALUES = ['42', '42', '42', '42', '41', '43', '1,234.50', '-7', '420', '4.2'];
const TEMPLATES = [
	value => value,
	value => `The answer is ${value}.`,
	value => `Answer: ${value}`,
	value => `I think it is ${value}`,
	value => `6 * 7 = ${value}`,
	value => `After checking, ${value}.`,
	() => 'I am not sure.',
];

function makeAnswers(size) {
	const random = mulberry32(20_240_601);
	return Array.from({length: size}, () => {
		const value = VALUES[Math.floor(random() * VALUES.length)];
		return TEMPLATES[Math.floor(random() * TEMPLATES.length)](value);
	});
}

const LAST_NUMBER = /-?\d[\d,]*(?:\.\d+)?/g;

/** The straightforward JavaScript version: last number, canonical decimal, Map tally, plurality. */
function tallyLastNumbers(answers) {
	const counts = new Map();
	for (const answer of answers) {
		const numbers = answer.match(LAST_NUMBER);
		if (numbers === null) {
			continue;
		}

		const key = String(Number(numbers.at(-1).replaceAll(',', '')));
		counts.set(key, (counts.get(key) ?? 0) + 1);
	}

	let winner = null;
	let top = 0;
	let tie = false;
	for (const [key, votes] of counts) {
		if (votes > top) {
			winner = key;
			top = votes;
			tie = false;
		} else if (votes === top) {
			tie = true;
		}
	}

	return {winner: tie ? null : winner, counts: Object.fromEntries(counts)};
}

const answers = makeAnswers(count);
// WebAssembly memory counts in `external` (not in `arrayBuffers`) in Node 20.
const wasmProxy = () => {
	const usage = process.memoryUsage();
	return usage.external - usage.arrayBuffers;
};

const wasmBytesBefore = wasmProxy();
const times = {package: [], javascript: []};
let packageResult;
let javascriptResult;
// One small warm-up of each, so compilation is not timed.
aggregate(answers.slice(0, 1000), {extract: 'number'});
tallyLastNumbers(answers.slice(0, 1000));
for (let round = 0; round < rounds; round++) {
	let start = performance.now();
	packageResult = aggregate(answers, {extract: 'number'});
	times.package.push(performance.now() - start);

	start = performance.now();
	javascriptResult = tallyLastNumbers(answers);
	times.javascript.push(performance.now() - start);
}

const wasmBytesAfter = wasmProxy();

// The cost per answer at two sizes, four times apart: in linear time it stays the
// same. Two workloads that a rescanning tally makes quadratic: many distinct
// answers, and an adaptive vote that draws a few samples per round until
// maxSamples (alternating answers never lead by 2 after an even number of samples).
const median = values => values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)];
async function perItemMs(size, work) {
	const times = [];
	for (let run = 0; run < 3; run++) {
		const start = performance.now();
		await work(size);
		times.push((performance.now() - start) / size);
	}

	return median(times);
}

const distinctAnswers = size => {
	const result = aggregate(Array.from({length: size}, (_, index) => `answer ${index}`));
	if (result.tally.length !== size) {
		throw new Error(`expected ${size} distinct answers, got ${result.tally.length}`);
	}
};

const alternatingVote = async size => {
	let calls = 0;
	const provider = custom(async () => (calls++ % 2 === 0 ? 'a' : 'b'));
	const result = await vote({provider, prompt: 'q', voters: 2, rule: {aheadBy: 2}, maxSamples: size, concurrency: 8});
	if (result.valid !== size) {
		throw new Error(`expected ${size} samples, got ${result.valid}`);
	}
};

const distinctLarge = Math.min(count, 30_000);
const voteLarge = Math.min(3000, Math.max(400, Math.round(count / 10)));
const scaling = {
	distinct: {small: distinctLarge / 4, large: distinctLarge},
	adaptive: {small: voteLarge / 4, large: voteLarge},
};
for (const [name, work] of [['distinct', distinctAnswers], ['adaptive', alternatingVote]]) {
	const sizes = scaling[name];
	sizes.smallMsPerItem = await perItemMs(sizes.small, work);
	sizes.largeMsPerItem = await perItemMs(sizes.large, work);
}
const sortedEntries = counts => Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
const sameCounts = JSON.stringify(sortedEntries(packageResult.counts)) === JSON.stringify(sortedEntries(javascriptResult.counts));
printResult({
	answers: count,
	times,
	packageWinner: packageResult.winner,
	javascriptWinner: javascriptResult.winner,
	packageCounts: packageResult.counts,
	javascriptCounts: javascriptResult.counts,
	packageAbstained: packageResult.abstained,
	sameWinner: packageResult.winner === javascriptResult.winner,
	sameCounts,
	wasmBytesBefore,
	wasmBytesAfter,
	scaling,
});
