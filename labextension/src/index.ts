// mlspace-s3magic for JupyterLab: an S3 Access sidebar (the buckets, and My requests below them), a notebook
// toolbar button and commands; a read-only S3 drive through which JupyterLab's viewers open objects.
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification, ToolbarButton } from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDocumentManager, IDocumentWidgetOpener } from '@jupyterlab/docmanager';
import { DocumentRegistry, IDocumentWidget } from '@jupyterlab/docregistry';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { MessageHook, MessageLoop } from '@lumino/messaging';
import { Panel } from '@lumino/widgets';

import { mountAdminPanel } from './admin';
import { S3AccessApi } from './api';
import { ILocalFiles } from './browse';
import { IRequestDefaults, requestAccess } from './dialog';
import { S3_DRIVE_NAME, S3Drive } from './drive';
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
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    INotebookTracker,
    IDefaultFileBrowser,
    IDocumentManager,
    IDocumentWidgetOpener
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    tracker: INotebookTracker | null,
    fileBrowser: IDefaultFileBrowser | null,
    docManager: IDocumentManager | null,
    opener: IDocumentWidgetOpener | null
  ) => {
    const api = new S3AccessApi(app.serviceManager.serverSettings);
    let files: ILocalFiles | null = null;
    if (fileBrowser && docManager) {
      app.serviceManager.contents.addDrive(new S3Drive(api, app.serviceManager.serverSettings));
      files = localFiles(app, fileBrowser, docManager);
      // Also an S3 document JupyterLab reopens itself (the restored layout, Open Recent).
      opener?.opened.connect((_, widget) => {
        if (widget.context.path.startsWith(`${S3_DRIVE_NAME}:`)) {
          void keepReadOnly(widget);
        }
      });
    }
    const sidebar = new S3AccessSidebar({
      api,
      insertSnippet: snippet => insertSnippet(tracker, snippet),
      requestAccess: defaults => void openRequest(defaults),
      files
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

/** Download, Upload and Open as the sidebar's folder view uses them: the default file browser's folder and
 * selection, and JupyterLab's viewers over the S3 drive. */
function localFiles(
  app: JupyterFrontEnd,
  browser: IDefaultFileBrowser,
  docManager: IDocumentManager
): ILocalFiles {
  let selectWhenShown: MessageHook = () => true;
  return {
    folder: () => browser.model.path,
    selectedFiles: () =>
      Array.from(browser.selectedItems())
        .filter(item => item.type !== 'directory')
        .map(item => item.path),
    reveal: async path => {
      await browser.model.refresh();
      if (PathExt.dirname(path) !== browser.model.path) {
        return;
      }
      const select = (): Promise<void> => browser.selectItemByName(PathExt.basename(path));
      MessageLoop.removeMessageHook(browser, selectWhenShown);
      if (browser.isVisible) {
        await select();
        return;
      }
      // The S3 sidebar has the file browser's place: a hidden listing does not sort its new items, so
      // select the file once the file browser is shown (after its listing caught up).
      selectWhenShown = (_handler, msg) => {
        if (msg.type === 'after-show') {
          MessageLoop.removeMessageHook(browser, selectWhenShown);
          window.setTimeout(() => void select().catch(() => undefined));
        }
        return true;
      };
      MessageLoop.installMessageHook(browser, selectWhenShown);
    },
    canOpen: name => app.docRegistry.getFileTypesForPath(name).length > 0,
    open: (bucket, key) => openReadOnly(docManager, `${S3_DRIVE_NAME}:${bucket}/${key}`)
  };
}

/** Open an S3 object in its default viewer, read-only; a notebook gets no kernel. */
async function openReadOnly(docManager: IDocumentManager, path: string): Promise<void> {
  const widget = docManager.openOrReveal(path, undefined, undefined, undefined, {
    shouldStart: false,
    canStart: false
  });
  if (!widget) {
    throw new Error(`JupyterLab has no viewer for ${PathExt.basename(path)}.`);
  }
  await keepReadOnly(widget);
}

/**
 * Read-only throughout: the drive says `writable: false` (JupyterLab shows its read-only mark, never
 * autosaves, and refuses Save) and rejects every write; the model and any editor are made read-only too,
 * since a text editor or a notebook's cells would otherwise still take keystrokes.
 */
async function keepReadOnly(widget: IDocumentWidget): Promise<void> {
  // A document that cannot load is closed again, and JupyterLab says why (File Load Error).
  const closed = new Promise<void>(resolve => widget.disposed.connect(() => resolve()));
  await Promise.race([widget.context.ready, closed]);
  if (widget.isDisposed) {
    return;
  }
  widget.context.model.readOnly = true;
  const content = widget.content as {
    editor?: { setOption(option: string, value: unknown): void };
    widgets?: readonly { readOnly: boolean }[];
  };
  content.editor?.setOption('readOnly', true);
  for (const cell of content.widgets ?? []) {
    cell.readOnly = true;
  }
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
