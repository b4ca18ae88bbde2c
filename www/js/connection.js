// The endpoint panel: the local model behind this page's server, or an
// endpoint, model and key the user enters. The key is read from its input when
// a provider is made, and it is never stored or sent to this page's server.
// The package sends it only to the base URL entered next to it.

import {anthropic, openai} from 'parallel-task-executor';
import {$, numberInput} from './dom.js';

/**
Wires the panel and returns `{ provider(options), concurrency(), describe(), isOpenAiCompatible() }`.
`config` contains the server's defaults (from /config.json).
*/
export function setupConnection(config) {
	const local = $('#endpoint-local');
	const custom = $('#endpoint-custom');
	const fields = $('#custom-endpoint');
	const kind = $('#api-kind');
	const baseUrl = $('#base-url');
	const model = $('#model');
	const apiKey = $('#api-key');
	const concurrency = $('#concurrency');

	// Enter in a field must not submit the panel: a submission would put the key in a URL.
	$('#connection').addEventListener('submit', event => event.preventDefault());

	const sync = () => {
		fields.hidden = !custom.checked;
		baseUrl.placeholder = kind.value === 'anthropic' ? 'https://api.anthropic.com/v1' : 'https://api.openai.com/v1';
	};

	if (config.provider === 'openai' || config.provider === 'anthropic') {
		custom.checked = true;
		kind.value = config.provider;
		baseUrl.value = config.baseURL ?? '';
		model.value = config.model ?? '';
	}

	concurrency.value = String(config.concurrency ?? 4);
	local.addEventListener('change', sync);
	custom.addEventListener('change', sync);
	kind.addEventListener('change', sync);
	sync();

	const isCustom = () => custom.checked;

	return {
		isOpenAiCompatible: () => !isCustom() || kind.value === 'openai',

		concurrency: () => numberInput(concurrency, {min: 1, max: 32, integer: true, name: 'Concurrency'}),

		describe() {
			return isCustom() ? `${kind.value} · ${model.value || '(no model)'} · ${baseUrl.value}` : `local model ${config.model ?? 'smollm2'} via ${location.origin}/v1`;
		},

		/** Creates a provider for one run. `extraBody` only applies to OpenAI-compatible endpoints. */
		provider({temperature, maxTokens, extraBody}) {
			if (!isCustom()) {
				return openai({
					baseURL: new URL('/v1', location.href).href,
					model: config.model ?? 'smollm2',
					temperature,
					maxTokens,
					extraBody,
				});
			}

			const url = baseUrl.value.trim();
			if (!url) {
				throw new TypeError('Enter the base URL of the endpoint, for example https://api.openai.com/v1');
			}

			if (!model.value.trim()) {
				throw new TypeError('Enter the model name');
			}

			const key = apiKey.value.trim() || undefined;
			if (kind.value === 'anthropic') {
				if (!key) {
					throw new TypeError('The Anthropic Messages API needs an API key');
				}

				// browser: true acknowledges that the key is in this page, which the user typed it into.
				return anthropic({baseURL: url, model: model.value.trim(), apiKey: key, maxTokens, temperature, browser: true});
			}

			return openai({baseURL: url, model: model.value.trim(), apiKey: key, maxTokens, temperature, extraBody});
		},
	};
}
