// A counter-based pseudo-random generator: the value for a key depends only on the
// seed and the key, never on the order of calls, so concurrent simulations give
// the same results however the scheduler interleaves them.

/** Mixes a 32-bit integer (the finalizer of MurmurHash3). */
function mix32(value) {
	let x = value >>> 0;
	x = Math.imul(x ^ (x >>> 16), 0x85_EB_CA_6B) >>> 0;
	x = Math.imul(x ^ (x >>> 13), 0xC2_B2_AE_35) >>> 0;
	return (x ^ (x >>> 16)) >>> 0;
}

/** Returns a uniform number in [0, 1) determined by the seed and the integer keys. */
export function uniform(seed, ...keys) {
	let state = mix32(seed ^ 0x9E_37_79_B9);
	for (const key of keys) {
		state = mix32(state ^ mix32(key + 0x7F_4A_7C_15));
	}

	return state / 2 ** 32;
}

/** Returns a sequential generator of uniform numbers in [0, 1) for a seed (mulberry32). */
export function mulberry32(seed) {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6D_2B_79_F5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
	};
}
