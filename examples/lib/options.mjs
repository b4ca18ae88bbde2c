// Command-line options of examples/main.mjs: the option table, parsing of flags
// and PTE_* environment variables, and the --help text.

export class UsageError extends Error {
	constructor(message) {
		super(message);
		this.name = 'UsageError';
		this.code = 'USAGE';
	}
}

const PROVIDERS = ['local', 'openai', 'anthropic'];
const EXTRACTS = ['number', 'choice', 'text'];
const JOBS = ['vote', 'section'];

function integer(min, max) {
	return (raw, flag) => {
		const value = Number(raw);
		if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
			throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
		}

		return value;
	};
}

function decimal(min, max) {
	return (raw, flag) => {
		const value = Number(raw);
		if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
			throw new UsageError(`${flag} must be a number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
		}

		return value;
	};
}

function oneOf(choices) {
	return (raw, flag) => {
		if (!choices.includes(raw)) {
			throw new UsageError(`${flag} must be one of ${choices.join(', ')}, got ${JSON.stringify(raw)}`);
		}

		return raw;
	};
}

function nonEmpty(raw, flag) {
	if (raw.trim() === '') {
		throw new UsageError(`${flag} must not be empty`);
	}

	return raw;
}

/**
Returns a URL for printing: the user name and password replaced with ***, every query
value replaced with ***, and the fragment dropped. Text that does not parse as a URL is
cut at the word that contains its first "@", or else at its first "?" or "#".
*/
export function redactUrl(raw) {
	let url;
	try {
		url = new URL(raw);
	} catch {
		return String(raw).replace(/[^\s/]*@.*$/s, '…').replace(/[?#].*$/s, '…');
	}

	const userinfo = url.username || url.password ? '***@' : '';
	const keys = [...url.searchParams.keys()];
	const query = keys.length > 0 ? `?${keys.map(key => `${encodeURIComponent(key)}=***`).join('&')}` : (url.search ? '?***' : '');
	return `${url.protocol}//${userinfo}${url.host}${url.pathname}${query}`;
}

function baseUrl(raw, flag) {
	let url;
	try {
		url = new URL(raw);
	} catch {
		throw new UsageError(`${flag} must be an absolute http(s) URL such as http://127.0.0.1:8080/v1, got ${JSON.stringify(redactUrl(raw))}`);
	}

	if (url.protocol !== 'http:' && url.protocol !== 'https:') {
		throw new UsageError(`${flag} must use http or https, got ${JSON.stringify(url.protocol)}`);
	}

	// The package rejects credentials in a base URL, and this program prints the URL.
	if (url.username || url.password) {
		throw new UsageError(`${flag} must not contain a user name or password (user:password@${url.host}); pass the API key in OPENAI_API_KEY or ANTHROPIC_API_KEY instead`);
	}

	return raw.replace(/\/+$/, '');
}

// The largest K the package takes for each rule (rule.firstTo and rule.aheadBy up to
// 1,000,000, rule.atLeast up to 1,000,000,000).
const RULE_KEYS = {
	'ahead-by': {key: 'aheadBy', max: 1_000_000},
	'first-to': {key: 'firstTo', max: 1_000_000},
	'at-least': {key: 'atLeast', max: 1_000_000_000},
};

// The package's range of maxSamples.
const MAX_SAMPLES_LIMIT = 100_000;

/**
Parses a voting rule written as plurality, majority, ahead-by-K, first-to-K or
at-least-K into the package's `rule` option, with K in the package's range.
*/
export function parseRule(raw, flag = '--rule') {
	if (raw === 'plurality' || raw === 'majority') {
		return raw;
	}

	const match = /^(ahead-by|first-to|at-least)-(\d+)$/.exec(raw);
	if (match) {
		const {key, max} = RULE_KEYS[match[1]];
		const k = Number(match[2]);
		if (k < 1 || k > max) {
			throw new UsageError(`${flag} ${match[1]}-K takes K from 1 to ${max.toLocaleString('en-US')}, got ${JSON.stringify(raw)}`);
		}

		return {[key]: k};
	}

	throw new UsageError(`${flag} must be plurality, majority, ahead-by-K, first-to-K or at-least-K with K >= 1 (for example ahead-by-2), got ${JSON.stringify(raw)}`);
}

function isAdaptive(rule) {
	return typeof rule === 'object' && ('firstTo' in rule || 'aheadBy' in rule);
}

/**
Returns the package's default maxSamples for `voters` first-round samples. For
first-to-K and ahead-by-K it is the larger of 3 x voters and voters + 2K, capped at
100 (or at voters, when voters is above 100). The other rules take exactly voters.
*/
function defaultMaxSamples(rule, voters) {
	if (!isAdaptive(rule)) {
		return voters;
	}

	const k = rule.firstTo ?? rule.aheadBy;
	return Math.min(Math.max(voters * 3, voters + (2 * k)), Math.max(voters, 100));
}

/**
Checks the combination of --voters, --rule and --max-samples as the package's vote
does before any request, so that a run the package would reject fails here with a
usage error. `names` maps each option to the flag or variable that set it.
*/
function checkVoteOptions({voters, rule, maxSamples}, names) {
	const ruleText = `${names.rule} ${describeRule(rule)}`;
	if (maxSamples !== null) {
		// The package accepts maxSamples equal to voters for every rule, because that is
		// what a rule without top-ups takes anyway.
		if (!isAdaptive(rule) && maxSamples !== voters) {
			throw new UsageError(`${names.maxSamples} applies only to ahead-by-K and first-to-K, which top up the vote; ${ruleText} takes exactly the ${voters} samples of ${names.voters}, so leave ${names.maxSamples} out`);
		}

		if (maxSamples < voters) {
			throw new UsageError(`${names.maxSamples} ${maxSamples} is below the ${voters} samples of the first round (${names.voters}); raise ${names.maxSamples} or lower ${names.voters}`);
		}
	}

	// Every vote counts 1 here, so K votes need at least K samples.
	const k = typeof rule === 'object' ? Object.values(rule)[0] : null;
	if (k === null) {
		return;
	}

	if (isAdaptive(rule)) {
		const cap = maxSamples ?? defaultMaxSamples(rule, voters);
		if (k > cap) {
			const capText = maxSamples === null ? `the default cap of ${cap} samples for ${voters} voters` : `${names.maxSamples} ${cap}`;
			const advice = k > MAX_SAMPLES_LIMIT
				? `lower K to at most ${MAX_SAMPLES_LIMIT.toLocaleString('en-US')}, the largest --max-samples`
				: `raise --max-samples to at least ${k}`;
			throw new UsageError(`${ruleText} can never be reached within ${capText}, because each sample casts one vote; ${advice}`);
		}

		return;
	}

	if (k > voters) {
		throw new UsageError(`${ruleText} can never be reached by ${voters} voters, because each sample casts one vote; lower K to at most ${voters} or raise ${names.voters}`);
	}
}

/** Describes a parsed rule the way --rule spells it. */
export function describeRule(rule) {
	if (typeof rule === 'string') {
		return rule;
	}

	const [key, k] = Object.entries(rule)[0];
	const name = {aheadBy: 'ahead-by', firstTo: 'first-to', atLeast: 'at-least'}[key];
	return `${name}-${k}`;
}

// Each option: flag, environment variable, value name in the help, default, help text, parser.
// `flag: true` marks a switch that takes no value.
const OPTIONS = [
	{name: 'provider', env: 'PTE_PROVIDER', value: 'NAME', default: 'local', parse: oneOf(PROVIDERS), help: 'local (start the bundled SmolLM2-135M model on 127.0.0.1), openai (any OpenAI-compatible chat completions API) or anthropic (the Anthropic Messages API). --base-url without --provider means openai'},
	{name: 'base-url', env: 'PTE_BASE_URL', value: 'URL', default: null, parse: baseUrl, help: 'API base URL for openai or anthropic, the part before /chat/completions or /messages (for example https://api.openai.com/v1); required with those providers'},
	{name: 'model', env: 'PTE_MODEL', value: 'NAME', default: null, parse: nonEmpty, help: 'model name; defaults to smollm2 for the local model, required otherwise'},
	{name: 'prompt', env: 'PTE_PROMPT', value: 'TEXT', default: 'What is 2+2? Answer with a number.', parse: nonEmpty, help: 'the question every voter answers'},
	{name: 'voters', env: 'PTE_VOTERS', value: 'N', default: 9, parse: integer(1, 100), help: 'samples in the first round of the vote'},
	{name: 'rule', env: 'PTE_RULE', value: 'RULE', default: 'ahead-by-2', parse: parseRule, help: 'plurality, majority, ahead-by-K (stop once the leader is K votes ahead), first-to-K (stop once an answer has K votes) or at-least-K'},
	{name: 'max-samples', env: 'PTE_MAX_SAMPLES', value: 'N', default: null, parse: integer(1, MAX_SAMPLES_LIMIT), help: 'cap on samples for ahead-by and first-to, which top up the vote until decided; at least --voters. The package default is the larger of 3 x voters and voters + 2K, at most 100 (or voters when above 100)'},
	{name: 'extract', env: 'PTE_EXTRACT', value: 'KIND', default: 'number', parse: oneOf(EXTRACTS), help: 'how an answer is read from a reply: number, choice (an option letter A to J) or text (the whole reply)'},
	{name: 'temperature', env: 'PTE_TEMPERATURE', value: 'T', default: 0.8, parse: decimal(0, 2), help: 'sampling temperature of the voters'},
	{name: 'max-tokens', env: 'PTE_MAX_TOKENS', value: 'N', default: 24, parse: integer(1, 100_000), help: 'output token limit of each vote sample; a reply cut at this limit is red-flagged and not counted'},
	{name: 'topic', env: 'PTE_TOPIC', value: 'TEXT', default: 'the Moon', parse: nonEmpty, help: 'topic of the sectioning job: three facts about it, then a summary of them'},
	{name: 'section-max-tokens', env: 'PTE_SECTION_MAX_TOKENS', value: 'N', default: 48, parse: integer(1, 100_000), help: 'output token limit of each sectioning call'},
	{name: 'concurrency', env: 'PTE_CONCURRENCY', value: 'N', default: 4, parse: integer(1, 64), help: 'requests open at once; the local model gets this many slots'},
	{name: 'timeout-ms', env: 'PTE_TIMEOUT_MS', value: 'MS', default: 60_000, parse: integer(1, 3_600_000), help: 'time limit of one attempt, in milliseconds'},
	{name: 'seed', env: 'PTE_SEED', value: 'N', default: null, parse: integer(0, 2 ** 31 - 1), help: 'sampling seed (openai only; vote sample i uses seed + i)'},
	{name: 'threads', env: 'PTE_THREADS', value: 'N', default: 1, parse: integer(1, 256), help: 'CPU threads of the local model'},
	{name: 'only', env: 'PTE_ONLY', value: 'JOB', default: null, parse: oneOf(JOBS), help: 'run only the vote or only the sectioning job'},
	{name: 'serve', env: 'PTE_SERVE', flag: true, default: false, help: 'serve the demo page on 127.0.0.1 instead of running the jobs, until Ctrl-C'},
	{name: 'port', env: 'PTE_PORT', value: 'N', default: 8092, parse: integer(0, 65_535), help: 'port of the demo page with --serve; 0 picks a free one'},
	{name: 'help', env: null, flag: true, default: false, help: 'print this help and exit'},
];

function camel(name) {
	return name.replace(/-([a-z])/g, (_, letter) => letter.toUpperCase());
}

function parseValue(option, raw, source) {
	if (option.flag) {
		if (['1', 'true', 'yes', ''].includes(raw.toLowerCase())) {
			return true;
		}

		if (['0', 'false', 'no'].includes(raw.toLowerCase())) {
			return false;
		}

		throw new UsageError(`${source} must be true or false, got ${JSON.stringify(raw)}`);
	}

	return option.parse(raw, source);
}

/**
Parses command-line arguments, with PTE_* environment variables as fallbacks.
Throws UsageError on an unknown flag, a missing value or an invalid value.
*/
export function parseOptions(argv, env = process.env) {
	const options = {};
	const fromFlag = new Set();
	// The flag or environment variable that set each option, for error messages.
	const names = {};
	for (const option of OPTIONS) {
		options[camel(option.name)] = typeof option.default === 'string' && option.parse ? option.parse(option.default, `--${option.name}`) : option.default;
		names[camel(option.name)] = `--${option.name}`;
	}

	for (const option of OPTIONS) {
		const raw = option.env ? env[option.env] : undefined;
		if (raw !== undefined && raw !== '') {
			options[camel(option.name)] = parseValue(option, raw, option.env);
			names[camel(option.name)] = option.env;
		}
	}

	for (let i = 0; i < argv.length; i++) {
		const argument = argv[i];
		if (!argument.startsWith('--')) {
			throw new UsageError(`unexpected argument ${JSON.stringify(argument)}; options start with --, see --help`);
		}

		const equals = argument.indexOf('=');
		const name = argument.slice(2, equals === -1 ? undefined : equals);
		const option = OPTIONS.find(candidate => candidate.name === name);
		if (!option) {
			const near = OPTIONS.find(candidate => candidate.name.replace(/-/g, '') === name.replace(/[-_]/g, '').toLowerCase());
			const hint = near ? `; did you mean --${near.name}?` : '; run with --help to list the options';
			throw new UsageError(`unknown option --${name}${hint}`);
		}

		let raw;
		if (equals !== -1) {
			raw = argument.slice(equals + 1);
		} else if (option.flag) {
			raw = 'true';
		} else if (i + 1 < argv.length) {
			i++;
			raw = argv[i];
		} else {
			throw new UsageError(`--${name} needs a value (${option.value})`);
		}

		options[camel(name)] = parseValue(option, raw, `--${name}`);
		names[camel(name)] = `--${name}`;
		fromFlag.add(name);
	}

	if (options.help) {
		return options;
	}

	if (options.baseUrl && !fromFlag.has('provider') && !env.PTE_PROVIDER) {
		options.provider = 'openai';
	}

	if (options.provider === 'local') {
		if (options.baseUrl) {
			throw new UsageError('--base-url applies to --provider openai or anthropic; the local model picks its own address');
		}

		options.model ??= 'smollm2';
	} else {
		if (!options.baseUrl) {
			throw new UsageError(`--base-url is required with --provider ${options.provider} (for example ${options.provider === 'openai' ? 'https://api.openai.com/v1' : 'https://api.anthropic.com/v1'})`);
		}

		if (!options.model) {
			throw new UsageError(`--model is required with --provider ${options.provider}`);
		}
	}

	checkVoteOptions(options, names);
	return options;
}

function wrap(text, width, indent) {
	const lines = [];
	let line = '';
	for (const word of text.split(' ')) {
		if (line && line.length + 1 + word.length > width) {
			lines.push(line);
			line = word;
		} else {
			line = line ? `${line} ${word}` : word;
		}
	}

	lines.push(line);
	return lines.join(`\n${' '.repeat(indent)}`);
}

/** Returns the --help text: every option with its environment variable, default and unit. */
export function helpText() {
	const rows = OPTIONS.map(option => {
		const left = option.flag ? `--${option.name}` : `--${option.name} ${option.value}`;
		let text = option.help;
		if (option.default !== null && option.default !== false) {
			const defaultText = typeof option.default === 'string' && option.default.includes(' ') ? JSON.stringify(option.default) : option.default;
			text += ` (default: ${defaultText})`;
		}

		if (option.env) {
			text += ` [env ${option.env}]`;
		}

		return [left, text];
	});
	const column = Math.max(...rows.map(([left]) => left.length)) + 4;
	const body = rows.map(([left, text]) => `  ${left.padEnd(column - 2)}${wrap(text, 100 - column, column)}`).join('\n');
	return `Usage: scripts/run.sh [options]    (or: node examples/main.mjs [options])

Runs a vote (the same question sampled several times, answers counted by a
rule, losing calls cancelled once the outcome is settled) and a sectioning job
(independent subtasks in parallel, then one that uses their outputs), and prints
the tally, a timeline of the calls and the measured speedup. By default both run
against a small local model (SmolLM2-135M) started on 127.0.0.1 and stopped at
the end. With --serve it serves the demo page instead.

Options (flags win over the environment variables):
${body}

API keys come from OPENAI_API_KEY or ANTHROPIC_API_KEY and are never printed.

Examples:
  scripts/run.sh --voters 5 --rule majority
  scripts/run.sh --only section --topic "the ocean"
  OPENAI_API_KEY=... scripts/run.sh --base-url https://api.openai.com/v1 --model gpt-4o-mini
  scripts/run.sh --serve --port 8092
`;
}
