// mlspace-s3magic for JupyterLab: an S3 Access sidebar (the buckets, and My requests below them), a notebook
// toolbar button and commands.
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification, ToolbarButton } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Panel } from '@lumino/widgets';

import { mountAdminPanel } from './admin';
import { S3AccessApi } from './api';
import { IRequestDefaults, requestAccess } from './dialog';
import { bucketIcon } from './icon';
import { MyRequests } from './requests';
import { S3AccessSidebar } from './sidebar';

const CommandIds = {
  requestAccess: 's3access:request-access',
  openSidebar: 's3access:open-sidebar'
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mlspace-s3magic:plugin',
  description: 'See which S3 buckets a notebook can reach, why one is denied, and request access.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    tracker: INotebookTracker | null
  ) => {
    const api = new S3AccessApi(app.serviceManager.serverSettings);
    const sidebar = new S3AccessSidebar({
      api,
      insertSnippet: snippet => insertSnippet(tracker, snippet),
      requestAccess: defaults => void openRequest(defaults)
    });
    const myRequests = new MyRequests({
      api,
      recheck: (bucket, prefix) => {
        app.shell.activateById(area.id);
        sidebar.refresh(true); // the bucket list probed again: a grant changes its status there too
        sidebar.showCheck(bucket, prefix);
      },
      requestAccess: defaults => void openRequest(defaults),
      pollSeconds: pollSecondsFromUrl()
    });
    // One tab in the left area: the sidebar's own widget, My requests below it.
    const area = new Panel();
    area.id = 's3access-sidebar';
    area.title.icon = bucketIcon;
    area.title.caption = 'S3 Access';
    area.addClass('s3access-area');
    sidebar.id = 's3access-buckets';
    area.addWidget(sidebar);
    area.addWidget(myRequests);
    app.shell.add(area, 'left', { rank: 600 });
    restorer?.add(area, area.id);
    void mountAdminPanel(app, restorer); // only for an admin of the configured endpoint

    // The form suggests the sidebar's buckets; before the sidebar has listed them, ask once (the server caches).
    async function openRequest(defaults: IRequestDefaults): Promise<void> {
      const names =
        sidebar.bucketNames ??
        (await api.buckets(false).then(
          r => r.buckets.map(b => b.bucket),
          () => []
        ));
      await requestAccess(api, defaults, names);
      myRequests.refresh(); // a request filed shows in My requests at once (a cancelled form costs one GET)
    }

    app.commands.addCommand(CommandIds.requestAccess, {
      label: 'Request S3 access',
      caption: 'Ask your admin for access to an S3 bucket',
      icon: bucketIcon,
      execute: () => openRequest({})
    });
    app.commands.addCommand(CommandIds.openSidebar, {
      label: 'Show S3 Access',
      execute: () => app.shell.activateById(area.id)
    });
    for (const command of Object.values(CommandIds)) {
      palette?.addItem({ command, category: 'S3 Access' });
    }

    const toolbarExtension: DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> = {
      createNew: panel => {
        const button = new ToolbarButton({
          className: 's3access-toolbar-button',
          icon: bucketIcon,
          label: 'Request S3 access',
          tooltip: 'Ask your admin for access to an S3 bucket',
          onClick: () => void app.commands.execute(CommandIds.requestAccess)
        });
        panel.toolbar.insertItem(10, 's3access-request', button);
        return button;
      }
    };
    app.docRegistry.addWidgetExtension('Notebook', toolbarExtension);
  }
};

/**
 * The first wait between My requests' polls from the page's `s3access-poll` query parameter (seconds, at
 * least 0.2), for tests and demos that cannot wait 15 s; the default otherwise.
 */
function pollSecondsFromUrl(): number | undefined {
  const asked = Number(new URLSearchParams(window.location.search).get('s3access-poll') ?? NaN);
  return asked >= 0.2 ? asked : undefined;
}

/** Put the snippet in a new code cell below the active cell of the current notebook. */
function insertSnippet(tracker: INotebookTracker | null, snippet: string): void {
  const notebook = tracker?.currentWidget?.content;
  if (!notebook?.model) {
    Notification.warning('Open a notebook first: the snippet goes into a new cell.', {
      autoClose: 5000
    });
    return;
  }
  const index = notebook.activeCellIndex + 1;
  notebook.model.sharedModel.insertCell(index, { cell_type: 'code', source: snippet });
  notebook.activeCellIndex = index;
}

export default plugin;
