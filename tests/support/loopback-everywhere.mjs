// Loaded with `node --import` into every test process by scripts/test.sh: installs
// the loopback guard before any test runs and fails the process if any test tried
// to reach a host other than 127.0.0.1, localhost or [::1].
import {guardViolations, installLoopbackGuard} from './loopback-guard.mjs';

installLoopbackGuard();

process.on('exit', () => {
	const violations = guardViolations();
	if (violations.length > 0) {
		console.error(`non-loopback requests were attempted: ${violations.map(v => v.url).join(', ')}`);
		process.exitCode = 1;
	}
});
