/**
 * The viewer page: open a scan and an exported model (file inputs or drag and
 * drop), run the model in a Web Worker, show and correct the mask, save it.
 * The page's state is on <body data-state> and in the status line, for the
 * user (an ARIA live region) and for tests alike.
 */
import './style.css';
import { readModelInfo } from '@medseg/medseg/deploy/browser/web-model';
import type { OnnxModelInfo } from '@medseg/medseg/deploy/model-info';
import { InferenceCancelled, InferenceClient } from './inference/client.ts';
import { cssColor, labelColormap } from './label-colors.ts';
import { ScanViewer, type Tool, type ViewName } from './viewer.ts';
import { presetById, WINDOW_PRESETS } from './window-presets.ts';

type State = 'empty' | 'loading' | 'ready' | 'running' | 'done' | 'cancelled' | 'error';

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
}

const ui = {
  imageFile: el<HTMLInputElement>('image-file'),
  modelFile: el<HTMLInputElement>('model-file'),
  views: el<HTMLDivElement>('views'),
  windowPreset: el<HTMLSelectElement>('window-preset'),
  tta: el<HTMLInputElement>('tta'),
  run: el<HTMLButtonElement>('run'),
  cancel: el<HTMLButtonElement>('cancel'),
  progress: el<HTMLProgressElement>('progress'),
  maskVisible: el<HTMLInputElement>('mask-visible'),
  maskOpacity: el<HTMLInputElement>('mask-opacity'),
  legend: el<HTMLUListElement>('legend'),
  tools: el<HTMLDivElement>('tools'),
  brushLabel: el<HTMLSelectElement>('brush-label'),
  brushSize: el<HTMLInputElement>('brush-size'),
  undo: el<HTMLButtonElement>('undo'),
  redo: el<HTMLButtonElement>('redo'),
  saveMask: el<HTMLButtonElement>('save-mask'),
  modelCard: el<HTMLDListElement>('model-card'),
  status: el<HTMLParagraphElement>('status'),
  canvas: el<HTMLCanvasElement>('gl'),
};

const viewer = await ScanViewer.create(ui.canvas);
const inference = new InferenceClient();
let model: { info: OnnxModelInfo; name: string } | null = null;
let imageName = 'scan';
let tool: Tool = 'navigate';

function setState(state: State, message: string): void {
  document.body.dataset.state = state;
  ui.status.textContent = message;
  const running = state === 'running';
  ui.run.disabled = running || !viewer.hasImage || !model;
  ui.cancel.disabled = !running;
  ui.imageFile.disabled = running;
  ui.modelFile.disabled = running;
  refreshEditing();
}

function refreshEditing(): void {
  ui.undo.disabled = !viewer.canUndo;
  ui.redo.disabled = !viewer.canRedo;
  ui.saveMask.disabled = !viewer.hasMask;
}
viewer.onMaskChange = refreshEditing;

function fail(what: string, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  setState('error', `${what}: ${message}`);
}

// ------------------------------------------------------------ opening files

async function openImage(file: File): Promise<void> {
  setState('loading', `Opening ${file.name}…`);
  try {
    await viewer.open(file);
    imageName = file.name.replace(/\.(nii(\.gz)?|nrrd|nhdr|gz)$/i, '');
    applyWindow();
    setState('ready', `${file.name}: ${viewer.describe()}`);
  } catch (e) {
    fail(`Cannot open ${file.name}`, e);
  }
}

function showModel(info: OnnxModelInfo, name: string): void {
  const rows: [string, string][] = [
    ['File', name],
    ['Dataset', info.dataset],
    ['Network', `${info.architecture} (${info.dims}), fold ${info.fold}, ${info.weights}`],
    ['Channels', info.channels.join(', ')],
    ['Spacing', `${info.targetSpacing.join(' × ')} mm`],
    ['Patch', `${info.patchSize.join(' × ')}, step ${info.inference.stepFraction}`],
    ['TTA', info.inference.mirrorAxes.length ? `mirror axes ${info.inference.mirrorAxes.join(', ')}` : 'none'],
    ['medseg', info.medsegVersion],
  ];
  ui.modelCard.replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }),
  );
  const labels = Object.entries(info.labels).map(([k, v]) => [Number(k), v] as const);
  ui.legend.replaceChildren(
    ...labels
      .filter(([k]) => k !== 0)
      .map(([k, v]) => {
        const li = document.createElement('li');
        li.style.setProperty('--swatch', cssColor(k));
        li.textContent = `${k} ${v}`;
        return li;
      }),
  );
  ui.brushLabel.replaceChildren(...labels.filter(([k]) => k !== 0).map(([k, v]) => new Option(`${k} ${v}`, String(k))));
}

async function openModel(file: File): Promise<void> {
  setState('loading', `Loading model ${file.name}…`);
  try {
    const bytes = await file.arrayBuffer();
    const info = readModelInfo(new Uint8Array(bytes));
    const loaded = await inference.load(bytes);
    model = { info, name: file.name };
    showModel(info, file.name);
    if (viewer.hasMask) viewer.setColormap(labelColormap(info.labels));
    setState(
      'ready',
      `Model ${file.name} ready (${loaded.seconds.toFixed(2)} s, wasm, ${loaded.threads} thread${loaded.threads > 1 ? 's' : ''})` +
        (viewer.hasImage ? '' : '; open a scan'),
    );
  } catch (e) {
    model = null;
    fail(`Cannot load model ${file.name}`, e);
  }
}

async function openFiles(files: Iterable<File>): Promise<void> {
  const list = [...files];
  const onnx = list.find((f) => /\.onnx$/i.test(f.name));
  const scan = list.find((f) => f !== onnx);
  if (scan) await openImage(scan);
  if (onnx) await openModel(onnx);
}

ui.imageFile.addEventListener('change', () => {
  const f = ui.imageFile.files?.[0];
  if (f) void openImage(f);
});
ui.modelFile.addEventListener('change', () => {
  const f = ui.modelFile.files?.[0];
  if (f) void openModel(f);
});
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  if (e.dataTransfer?.files.length) void openFiles(e.dataTransfer.files);
});

// ------------------------------------------------------------ display

function setView(view: ViewName): void {
  viewer.setView(view);
  for (const b of ui.views.querySelectorAll<HTMLButtonElement>('button')) b.setAttribute('aria-pressed', String(b.dataset.view === view));
}
ui.views.addEventListener('click', (e) => {
  const view = (e.target as HTMLElement).closest('button')?.dataset.view as ViewName | undefined;
  if (view) setView(view);
});

ui.windowPreset.replaceChildren(...WINDOW_PRESETS.map((p) => new Option(p.label, p.id)));
function applyWindow(): void {
  if (!viewer.hasImage) return;
  const [min, max] = presetById(ui.windowPreset.value).range(viewer.stats());
  viewer.setWindow(min, max);
}
ui.windowPreset.addEventListener('change', applyWindow);

ui.maskVisible.addEventListener('change', () => viewer.setMaskVisible(ui.maskVisible.checked));
ui.maskOpacity.addEventListener('input', () => viewer.setMaskOpacity(Number(ui.maskOpacity.value)));

// ------------------------------------------------------------ inference

ui.run.addEventListener('click', () => void runModel());
ui.cancel.addEventListener('click', () => inference.cancel());

async function runModel(): Promise<void> {
  if (!model || !viewer.hasImage) return;
  const info = model.info;
  try {
    const scan = viewer.voxels(info.channels.length);
    ui.progress.value = 0;
    setState('running', 'Segmenting…');
    const result = await inference.run(scan.image, scan.shape, scan.spacing, {
      tta: ui.tta.checked,
      onProgress: (done, total) => {
        ui.progress.value = done / total;
        ui.status.textContent = `Segmenting: tile ${done} of ${total}`;
      },
    });
    viewer.setMask(result.labels, labelColormap(info.labels));
    const found = Object.entries(info.labels)
      .filter(([k]) => k !== '0')
      .map(([k, v]) => `${v} ${result.labels.reduce((n, x) => n + (x === Number(k) ? 1 : 0), 0)}`)
      .join(', ');
    setState(
      'done',
      `Segmented in ${result.seconds.toFixed(2)} s (${result.tiles} tiles × ${result.passesPerTile} pass${result.passesPerTile > 1 ? 'es' : ''}); voxels: ${found}`,
    );
  } catch (e) {
    if (e instanceof InferenceCancelled) setState('cancelled', 'Cancelled; the scan and any previous mask are unchanged.');
    else fail('Inference failed', e);
  }
}

// ------------------------------------------------------------ editing

function setTool(next: Tool): void {
  tool = next;
  for (const b of ui.tools.querySelectorAll<HTMLButtonElement>('button')) b.setAttribute('aria-pressed', String(b.dataset.tool === tool));
  if (viewer.hasImage) viewer.setTool(tool, Number(ui.brushLabel.value || 1), Number(ui.brushSize.value));
  refreshEditing();
}
ui.tools.addEventListener('click', (e) => {
  const t = (e.target as HTMLElement).closest('button')?.dataset.tool as Tool | undefined;
  if (t) setTool(t);
});
ui.brushLabel.addEventListener('change', () => setTool(tool));
ui.brushSize.addEventListener('change', () => setTool(tool));
ui.undo.addEventListener('click', () => viewer.undo());
ui.redo.addEventListener('click', () => viewer.redo());
ui.saveMask.addEventListener('click', () => void saveMask());

async function saveMask(): Promise<void> {
  try {
    const bytes = await viewer.maskNifti();
    const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/gzip' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `${imageName}_mask.nii.gz`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    ui.status.textContent = `Saved ${a.download}`;
  } catch (e) {
    fail('Cannot save the mask', e);
  }
}

// ------------------------------------------------------------ keyboard

const KEYS: Record<string, () => void> = {
  a: () => setView('axial'),
  c: () => setView('coronal'),
  s: () => setView('sagittal'),
  p: () => setView('multiplanar'),
  r: () => setView('render'),
  n: () => setTool('navigate'),
  b: () => setTool('brush'),
  e: () => setTool('eraser'),
  m: () => {
    ui.maskVisible.checked = !ui.maskVisible.checked;
    viewer.setMaskVisible(ui.maskVisible.checked);
  },
};
document.addEventListener('keydown', (e) => {
  if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
  const key = e.key.toLowerCase();
  if ((e.ctrlKey || e.metaKey) && key === 'z') {
    e.preventDefault();
    if (e.shiftKey) viewer.redo();
    else viewer.undo();
  } else if ((e.ctrlKey || e.metaKey) && key === 'y') {
    e.preventDefault();
    viewer.redo();
  } else if (!e.ctrlKey && !e.metaKey && !e.altKey) KEYS[key]?.();
});

setView('multiplanar');
setState('empty', 'Open a scan (NIfTI or NRRD) and an exported model (.onnx), or drop them onto the page.');
