// Loads the package with require() (Node 20.19+ loads ES modules that way) and runs
// one complete() call against the base URL in API_BASE. Prints the result as JSON on
// stdout, or the error and exit code 1.
const {complete, openai} = require('parallel-task-executor');

const provider = openai({baseURL: process.env.API_BASE, model: 'scripted'});

complete({provider, prompt: 'Say hi from require'}).then(
	result => {
		process.stdout.write(JSON.stringify(result));
	},
	error => {
		process.stderr.write(`${error.code ?? error.name}: ${error.message}\n`);
		process.exitCode = 1;
	},
);
