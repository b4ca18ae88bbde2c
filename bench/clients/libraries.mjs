// The libraries under comparison, each as `makeRunner(baseURL)` returning
// `run(prompts, concurrency)`, which sends one chat completion per prompt with at
// most `concurrency` in flight and resolves with the reply texts in prompt order.
// Each library is imported only when chosen, so a process loads one library.

export const LIBRARIES = {
	complete: {
		label: 'parallel-task-executor complete',
		async makeRunner(baseURL) {
			const {complete, openai} = await import('parallel-task-executor');
			const provider = openai({baseURL, model: 'scripted'});
			return async prompts => Promise.all(prompts.map(async prompt => (await complete({provider, prompt})).text));
		},
	},
	section: {
		label: 'parallel-task-executor section',
		async makeRunner(baseURL) {
			const {openai, section} = await import('parallel-task-executor');
			const provider = openai({baseURL, model: 'scripted'});
			return async (prompts, concurrency) => {
				const report = await section({
					provider,
					subtasks: prompts.map((prompt, index) => ({id: `t${index}`, prompt})),
					concurrency,
				});
				return report.results.map(result => (result.status === 'ok' ? result.text : null));
			};
		},
	},
	vote: {
		label: 'parallel-task-executor vote',
		async makeRunner(baseURL) {
			const {openai, vote} = await import('parallel-task-executor');
			const provider = openai({baseURL, model: 'scripted'});
			return async (prompts, concurrency) => {
				const result = await vote({
					provider,
					prompt: prompts[0],
					voters: prompts.length,
					concurrency,
					extract: 'number',
					// Every sample is needed to reach this many votes, so all the calls run
					// (plurality would settle, and cancel the rest, after a majority).
					rule: {atLeast: prompts.length},
				});
				return result.samples.map(sample => (sample.status === 'ok' ? sample.text : null));
			};
		},
	},
	fetch: {
		label: 'fetch + p-limit',
		async makeRunner(baseURL) {
			const {default: pLimit} = await import('p-limit');
			const url = `${baseURL}/chat/completions`;
			const call = async prompt => {
				const response = await fetch(url, {
					method: 'POST',
					headers: {'content-type': 'application/json'},
					body: JSON.stringify({model: 'scripted', messages: [{role: 'user', content: prompt}]}),
				});
				if (!response.ok) {
					throw new Error(`HTTP ${response.status}: ${await response.text()}`);
				}

				const body = await response.json();
				return body.choices[0].message.content;
			};

			return (prompts, concurrency) => {
				const limit = pLimit(concurrency);
				return Promise.all(prompts.map(prompt => limit(() => call(prompt))));
			};
		},
	},
	aisdk: {
		label: 'AI SDK generateText + p-limit',
		async makeRunner(baseURL) {
			const [{default: pLimit}, {generateText}, {createOpenAICompatible}] = await Promise.all([
				import('p-limit'),
				import('ai'),
				import('@ai-sdk/openai-compatible'),
			]);
			const provider = createOpenAICompatible({name: 'scripted', baseURL});
			const model = provider.chatModel('scripted');
			return (prompts, concurrency) => {
				const limit = pLimit(concurrency);
				return Promise.all(prompts.map(prompt => limit(async () => (await generateText({model, prompt})).text)));
			};
		},
	},
	langchain: {
		label: 'LangChain.js ChatOpenAI.batch',
		async makeRunner(baseURL) {
			const {ChatOpenAI} = await import('@langchain/openai');
			const model = new ChatOpenAI({model: 'scripted', apiKey: 'sk-bench-not-a-real-key', configuration: {baseURL}});
			return async (prompts, concurrency) => {
				const messages = await model.batch(prompts, {maxConcurrency: concurrency});
				return messages.map(message => message.content);
			};
		},
	},
};

