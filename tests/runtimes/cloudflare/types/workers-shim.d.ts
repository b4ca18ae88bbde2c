// The part of `cloudflare:workers` that pkg/cloudflare.d.ts uses, shaped as in
// @cloudflare/workers-types, which this repository does not install.
declare module 'cloudflare:workers' {
	export abstract class DurableObject<Env = unknown> {
		protected ctx: {storage: unknown; blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T>};
		protected env: Env;
		constructor(ctx: unknown, env: Env);
		alarm?(alarmInfo?: {retryCount: number; isRetry: boolean}): void | Promise<void>;
	}

	export type WorkflowStepConfig = {
		retries?: {limit: number; delay: string | number; backoff?: 'constant' | 'linear' | 'exponential'};
		timeout?: string | number;
	};

	export abstract class WorkflowStep {
		do<T>(name: string, callback: (context: {attempt: number}) => Promise<T>): Promise<T>;
		do<T>(name: string, config: WorkflowStepConfig, callback: (context: {attempt: number}) => Promise<T>): Promise<T>;
		sleep(name: string, duration: string | number): Promise<void>;
	}

	export abstract class WorkflowEntrypoint<Env = unknown, Params = unknown> {
		protected env: Env;
		run(event: {payload: Params}, step: WorkflowStep): Promise<unknown>;
	}
}
