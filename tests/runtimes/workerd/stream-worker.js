// A worker that reads streamed replies cut at many byte offsets: GET /cut?from=A&to=B
// runs one streamed `complete` per offset from A to B (the prompt names the offset, and
// the scripted server cuts its stream there) and returns every text and finish reason.
// __API_BASE__ is inlined by the test harness.
import {complete, openai, anthropic} from 'parallel-task-executor';

const streams = {
	openai: openai({baseURL: __API_BASE__, model: 'scripted', stream: true}),
	anthropic: anthropic({baseURL: __API_BASE__, model: 'scripted', apiKey: 'sk-ant-worker-test', maxTokens: 32, stream: true}),
};

export default {
	async fetch(request) {
		const url = new URL(request.url);
		const from = Number(url.searchParams.get('from'));
		const to = Number(url.searchParams.get('to'));
		const provider = streams[url.searchParams.get('api')];
		const results = [];
		for (let offset = from; offset <= to; offset += 1) {
			try {
				// eslint-disable-next-line no-await-in-loop
				const result = await complete({provider, prompt: `cut-${offset}`});
				results.push({offset, text: result.text, finishReason: result.finishReason});
			} catch (error) {
				results.push({offset, error: `${error.code}: ${error.message}`});
			}
		}

		return Response.json(results);
	},
};
