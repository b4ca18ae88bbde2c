// The demo page's entry: loads the server's defaults, wires the endpoint panel,
// the tabs and the three views. The package comes from the import map in
// index.html, which maps `parallel-task-executor` to its browser entry.

import {setupConnection} from './js/connection.js';
import {$} from './js/dom.js';
import {setupScoreView} from './js/score-view.js';
import {setupSectionView} from './js/section-view.js';
import {setupVoteView} from './js/vote-view.js';

async function loadConfig() {
	try {
		const response = await fetch('/config.json', {cache: 'no-store'});
		if (response.ok) {
			return await response.json();
		}
	} catch {
		// Served by another static server: use the built-in defaults.
	}

	return {};
}

function setupTabs() {
	const tabs = [...document.querySelectorAll('[role="tab"]')];
	const show = tab => {
		for (const other of tabs) {
			const selected = other === tab;
			other.setAttribute('aria-selected', String(selected));
			other.tabIndex = selected ? 0 : -1;
			$(`#view-${other.dataset.view}`).hidden = !selected;
		}

		history.replaceState(null, '', `#${tab.dataset.view}`);
	};

	for (const tab of tabs) {
		tab.addEventListener('click', () => show(tab));
	}

	const initial = tabs.find(tab => `#${tab.dataset.view}` === location.hash) ?? tabs[0];
	show(initial);
}

const config = await loadConfig();
const connection = setupConnection(config);
setupTabs();
setupVoteView({connection, config});
setupSectionView({connection, config});
setupScoreView({connection});
$('#endpoint-summary').textContent = connection.describe();
for (const input of document.querySelectorAll('#connection input, #connection select')) {
	input.addEventListener('change', () => {
		$('#endpoint-summary').textContent = connection.describe();
	});
}

document.body.dataset.ready = 'true';
