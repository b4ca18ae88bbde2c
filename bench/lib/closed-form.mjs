// Closed-form error rates and expected sample counts of the voting rules for
// independent voters that give the right answer with probability p and the one
// wrong answer otherwise (two candidates, so a plurality of an odd N never ties).

function binomial(n, k) {
	let result = 1;
	for (let i = 1; i <= k; i++) {
		result = (result * (n - k + i)) / i;
	}

	return result;
}

/** Plurality (here also majority) of N, N odd: wrong when at most (N - 1) / 2 votes are right. */
export function plurality(p, n) {
	const q = 1 - p;
	let error = 0;
	for (let right = 0; right <= (n - 1) / 2; right++) {
		error += binomial(n, right) * p ** right * q ** (n - right);
	}

	return {error, samples: n};
}

/**
First to k votes: the race ends at sample k + j when the winner's k-th vote
arrives after j votes for the loser (a negative binomial). So it always ends
within 2k - 1 samples, and it is wrong exactly as often as a plurality of 2k - 1.
*/
export function firstTo(p, k) {
	const q = 1 - p;
	let error = 0;
	let samples = 0;
	for (let j = 0; j < k; j++) {
		const ways = binomial(k - 1 + j, j);
		const rightWins = ways * p ** k * q ** j;
		const wrongWins = ways * q ** k * p ** j;
		error += wrongWins;
		samples += (k + j) * (rightWins + wrongWins);
	}

	return {error, samples};
}

/**
Ahead by k (gambler's ruin): the margin is a random walk that stops at +k or -k.
Wrong with probability 1 / (1 + (p/q)^k); the expected length is
(k / (p - q)) * (p^k - q^k) / (p^k + q^k), and k^2 when p = 1/2.
*/
export function aheadBy(p, k) {
	const q = 1 - p;
	const error = 1 / (1 + (p / q) ** k);
	const samples = Math.abs(p - q) < 1e-12 ? k * k : (k / (p - q)) * ((p ** k - q ** k) / (p ** k + q ** k));
	return {error, samples};
}

/**
Ahead by k with at most `cap` samples, exactly, by stepping the margin's
distribution: what the closed form leaves out when a vote hits the cap. An
undecided vote counts as wrong unless the right answer leads.
*/
export function aheadByCapped(p, k, cap) {
	const q = 1 - p;
	let margins = new Map([[0, 1]]);
	let error = 0;
	let samples = 0;
	let undecided = 0;
	for (let step = 1; step <= cap; step++) {
		const next = new Map();
		for (const [margin, mass] of margins) {
			for (const [move, chance] of [[1, p], [-1, q]]) {
				const reached = margin + move;
				const weight = mass * chance;
				if (reached === k || reached === -k) {
					samples += step * weight;
					if (reached === -k) {
						error += weight;
					}
				} else {
					next.set(reached, (next.get(reached) ?? 0) + weight);
				}
			}
		}

		margins = next;
	}

	for (const [margin, mass] of margins) {
		undecided += mass;
		samples += cap * mass;
		if (margin <= 0) {
			error += mass;
		}
	}

	return {error, samples, undecided};
}
