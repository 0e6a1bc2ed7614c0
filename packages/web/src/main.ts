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
import { labelColormap } from './label-colors.ts';
import { onnxCardRows, serviceCardRows, showModelPanel } from './model-panel.ts';
import { ScanViewer, type OverlayKind, type Tool, type ViewName } from './viewer.ts';
import { dicomToNifti, filesOfZip } from './dicom-open.ts';
import { maskAsDicomSeg } from './dicom-seg.ts';
import { ServiceCancelled, ServiceClient, type ServiceModel } from './service-client.ts';
import { presetById, WINDOW_PRESETS } from './window-presets.ts';
import { describeFlag, showFlag } from './case-flag.ts';

type State = 'empty' | 'loading' | 'ready' | 'running' | 'done' | 'cancelled' | 'error';

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
}

const ui = {
  imageFile: el<HTMLInputElement>('image-file'),
  dicomFolder: el<HTMLInputElement>('dicom-folder'),
  modelFile: el<HTMLInputElement>('model-file'),
  views: el<HTMLDivElement>('views'),
  windowPreset: el<HTMLSelectElement>('window-preset'),
  tta: el<HTMLInputElement>('tta'),
  uncertainty: el<HTMLInputElement>('uncertainty'),
  webgpu: el<HTMLInputElement>('webgpu'),
  run: el<HTMLButtonElement>('run'),
  cancel: el<HTMLButtonElement>('cancel'),
  progress: el<HTMLProgressElement>('progress'),
  maskVisible: el<HTMLInputElement>('mask-visible'),
  maskOpacity: el<HTMLInputElement>('mask-opacity'),
  legend: el<HTMLUListElement>('legend'),
  caseFlag: el<HTMLParagraphElement>('case-flag'),
  overlay: {
    uncertainty: { visible: el<HTMLInputElement>('uncertainty-visible'), opacity: el<HTMLInputElement>('uncertainty-opacity') },
    heatmap: { visible: el<HTMLInputElement>('heatmap-visible'), opacity: el<HTMLInputElement>('heatmap-opacity') },
  } satisfies Record<OverlayKind, { visible: HTMLInputElement; opacity: HTMLInputElement }>,
  heatmapFile: el<HTMLInputElement>('heatmap-file'),
  tools: el<HTMLDivElement>('tools'),
  brushLabel: el<HTMLSelectElement>('brush-label'),
  brushSize: el<HTMLInputElement>('brush-size'),
  brush3d: el<HTMLInputElement>('brush-3d'),
  interpolate: el<HTMLButtonElement>('interpolate'),
  undo: el<HTMLButtonElement>('undo'),
  redo: el<HTMLButtonElement>('redo'),
  saveMask: el<HTMLButtonElement>('save-mask'),
  saveSeg: el<HTMLButtonElement>('save-seg'),
  modelCard: el<HTMLDListElement>('model-card'),
  serviceUrl: el<HTMLInputElement>('service-url'),
  serviceKey: el<HTMLInputElement>('service-key'),
  serviceConnect: el<HTMLButtonElement>('service-connect'),
  serviceModel: el<HTMLSelectElement>('service-model'),
  serviceExplain: el<HTMLInputElement>('service-explain'),
  serviceAuthor: el<HTMLInputElement>('service-author'),
  serviceRun: el<HTMLButtonElement>('service-run'),
  serviceSave: el<HTMLButtonElement>('service-save'),
  status: el<HTMLParagraphElement>('status'),
  canvas: el<HTMLCanvasElement>('gl'),
};

const viewer = await ScanViewer.create(ui.canvas);
const inference = new InferenceClient();
let model: { info: OnnxModelInfo; name: string } | null = null;
let imageName = 'scan';
/** The opened scan's file: what the service is sent. */
let scanFile: File | null = null;
/** The DICOM files the scan was converted from (a SEG refers to them); none for a NIfTI or NRRD scan. */
let dicomFiles: File[] | null = null;
let service: { client: ServiceClient; models: ServiceModel[] } | null = null;
/** The service job whose result is the mask shown (a correction is saved to it); none after a new scan or a browser run. */
let serviceJob: { id: string; model: string } | null = null;
let serviceRun: AbortController | null = null;
let tool: Tool = 'navigate';

function setState(state: State, message: string): void {
  document.body.dataset.state = state;
  ui.status.textContent = message;
  const running = state === 'running';
  ui.run.disabled = running || !viewer.hasImage || !model;
  ui.cancel.disabled = !running;
  ui.serviceRun.disabled = running || !viewer.hasImage || !service || !ui.serviceModel.value;
  ui.imageFile.disabled = running;
  ui.dicomFolder.disabled = running;
  ui.modelFile.disabled = running;
  ui.heatmapFile.disabled = running || !viewer.hasImage;
  refreshEditing();
}

function refreshEditing(): void {
  ui.undo.disabled = !viewer.canUndo;
  ui.redo.disabled = !viewer.canRedo;
  ui.saveMask.disabled = !viewer.hasMask;
  ui.saveSeg.disabled = !viewer.hasMask || !dicomFiles;
  ui.interpolate.disabled = !viewer.hasMask;
  ui.serviceSave.disabled = !viewer.hasMask || !serviceJob || !service;
}
viewer.onMaskChange = refreshEditing;

function fail(what: string, e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  setState('error', `${what}: ${message}`);
}

// ------------------------------------------------------------ opening files

async function openImage(file: File, from?: string): Promise<void> {
  if (/\.zip$/i.test(file.name)) return openDicom(async () => filesOfZip(file), file.name);
  if (/\.dcm$/i.test(file.name)) return openDicom(async () => [file], file.name);
  setState('loading', `Opening ${file.name}…`);
  try {
    await viewer.open(file);
    scanFile = file;
    dicomFiles = null;
    serviceJob = null;
    clearOverlays();
    imageName = (from ?? file.name).replace(/\.(nii(\.gz)?|nrrd|nhdr|gz|zip)$/i, '');
    applyWindow();
    setState('ready', `${from ? `${from} (DICOM, as ${file.name})` : file.name}: ${viewer.describe()}`);
  } catch (e) {
    fail(`Cannot open ${file.name}`, e);
  }
}

/** A DICOM series (a folder's files, a zip, one file) converted to NIfTI in the page, then opened as a scan. */
async function openDicom(files: () => Promise<File[]>, what: string): Promise<void> {
  setState('loading', `Converting the DICOM series in ${what}…`);
  try {
    const list = await files();
    const { volume, all } = await dicomToNifti(list);
    await openImage(volume, what);
    if (viewer.hasImage && scanFile === volume) {
      dicomFiles = list;
      refreshEditing();
    }
    if (all.length > 1) ui.status.textContent += `; ${all.length} series found, showing the largest (${all.map((f) => f.name).join(', ')})`;
  } catch (e) {
    fail(`Cannot open the DICOM series in ${what}`, e);
  }
}

async function openModel(file: File): Promise<void> {
  setState('loading', `Loading model ${file.name}…`);
  try {
    const bytes = await file.arrayBuffer();
    const info = readModelInfo(new Uint8Array(bytes));
    const loaded = await inference.load(bytes, { webgpu: ui.webgpu.checked });
    model = { info, name: file.name };
    showModelPanel(ui, onnxCardRows(info, file.name), info.labels as Record<string, string>);
    if (viewer.hasMask) viewer.setColormap(labelColormap(info.labels));
    setState(
      'ready',
      `Model ${file.name} ready (${loaded.seconds.toFixed(2)} s, ${loaded.provider === 'webgpu' ? loaded.note : `${loaded.note}, ${loaded.threads} thread${loaded.threads > 1 ? 's' : ''}`})` +
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
  const dicom = list.filter((f) => /\.dcm$/i.test(f.name));
  const scan = list.find((f) => f !== onnx && !dicom.includes(f));
  if (dicom.length > 1) await openDicom(async () => dicom, `${dicom.length} dropped files`);
  else if (scan ?? dicom[0]) await openImage((scan ?? dicom[0])!);
  if (onnx) await openModel(onnx);
}

ui.imageFile.addEventListener('change', () => {
  const f = ui.imageFile.files?.[0];
  if (f) void openImage(f);
});
ui.dicomFolder.addEventListener('change', () => {
  const files = [...(ui.dicomFolder.files ?? [])];
  const folder = files[0]?.webkitRelativePath.split('/')[0] || 'the folder';
  if (files.length) void openDicom(async () => files, folder);
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

// ------------------------------------------------------------ overlays: uncertainty and heat map

/** Shows a map as the overlay of its kind, with the visibility and opacity its controls have. */
function showOverlay(kind: OverlayKind, values: Float32Array): void {
  const c = ui.overlay[kind];
  viewer.setOverlay(kind, values, { visible: c.visible.checked, opacity: Number(c.opacity.value) });
  c.visible.disabled = false;
}

/** Removes the overlays of these kinds (the uncertainty one takes the review flag with it). */
function clearOverlays(kinds: OverlayKind[] = ['uncertainty', 'heatmap']): void {
  for (const kind of kinds) {
    viewer.setOverlay(kind, null);
    ui.overlay[kind].visible.disabled = true;
  }
  if (kinds.includes('uncertainty')) showFlag(ui.caseFlag, { state: 'none', text: 'No uncertainty for this scan yet.' });
}

function toggleOverlay(kind: OverlayKind): void {
  const c = ui.overlay[kind].visible;
  if (c.disabled) return;
  c.checked = !c.checked;
  viewer.setOverlayVisible(kind, c.checked);
}

for (const kind of Object.keys(ui.overlay) as OverlayKind[]) {
  const c = ui.overlay[kind];
  c.visible.addEventListener('change', () => viewer.setOverlayVisible(kind, c.visible.checked));
  c.opacity.addEventListener('input', () => viewer.setOverlayOpacity(kind, Number(c.opacity.value)));
}

ui.heatmapFile.addEventListener('change', () => {
  const f = ui.heatmapFile.files?.[0];
  if (f) void openHeatmap(f);
});

async function openHeatmap(file: File): Promise<void> {
  try {
    showOverlay('heatmap', await viewer.mapOf(file));
    ui.status.textContent = `Heat map ${file.name} shown over the scan`;
  } catch (e) {
    fail(`Cannot show ${file.name} as a heat map`, e);
  }
}

// ------------------------------------------------------------ inference

ui.run.addEventListener('click', () => void runModel());
ui.cancel.addEventListener('click', () => {
  inference.cancel();
  serviceRun?.abort();
});

async function runModel(): Promise<void> {
  if (!model || !viewer.hasImage) return;
  const info = model.info;
  try {
    const scan = viewer.voxels(info.channels.length);
    ui.progress.value = 0;
    setState('running', 'Segmenting…');
    const result = await inference.run(scan.image, scan.shape, scan.spacing, {
      tta: ui.tta.checked,
      uncertainty: ui.uncertainty.checked,
      onProgress: (done, total) => {
        ui.progress.value = done / total;
        ui.status.textContent = `Segmenting: tile ${done} of ${total}`;
      },
    });
    viewer.setMask(result.labels, labelColormap(info.labels));
    serviceJob = null;
    // A heat map opened from a file stays: it explains the scan, not this run.
    clearOverlays(['uncertainty']);
    if (result.uncertainty) {
      showOverlay('uncertainty', result.uncertainty.entropy);
      const u = result.uncertainty;
      showFlag(ui.caseFlag, describeFlag({ ...u, score: u.score.meanEntropy, members: u.score.members }, info.calibration?.triage?.failureDice));
    }
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

// ------------------------------------------------------------ the service

async function connectService(): Promise<void> {
  const key = ui.serviceKey.value.trim();
  if (!key) return setState(document.body.dataset.state as State, 'Give the API key the service printed (or one made with POST /keys).');
  const client = new ServiceClient(ui.serviceUrl.value.trim(), key);
  setState('loading', 'Connecting to the service…');
  try {
    const models = await client.models();
    service = { client, models };
    ui.serviceModel.replaceChildren(...models.map((m) => new Option(`${m.id} (${m.version})`, m.id)));
    ui.serviceModel.disabled = models.length === 0;
    if (models[0]) showModelPanel(ui, serviceCardRows(models[0]), models[0].labels);
    setState(viewer.hasImage ? 'ready' : 'empty', `Connected: ${models.length} model(s) on the service${viewer.hasImage ? '' : '; open a scan'}`);
  } catch (e) {
    service = null;
    fail('Cannot connect to the service', e);
  }
}

async function runOnService(): Promise<void> {
  const m = service?.models.find((x) => x.id === ui.serviceModel.value);
  if (!service || !m || !scanFile) return;
  serviceRun = new AbortController();
  ui.progress.value = 0;
  setState('running', `Uploading ${scanFile.name} to the service…`);
  try {
    const t0 = performance.now();
    const { jobId, result, uncertainty, maps } = await service.client.segment(scanFile, m.id, {
      uncertainty: ui.uncertainty.checked,
      explain: ui.serviceExplain.checked ? 'gradcam' : undefined,
      signal: serviceRun.signal,
      onProgress: (fraction, state) => {
        ui.progress.value = fraction;
        ui.status.textContent = `On the service: ${state}, ${Math.round(fraction * 100)} %`;
      },
    });
    viewer.setMask(await viewer.labelsOf(result), labelColormap(m.labels));
    serviceJob = { id: jobId, model: m.id };
    clearOverlays();
    if (maps.entropy) showOverlay('uncertainty', await viewer.mapOf(maps.entropy));
    if (maps.heatmap) showOverlay('heatmap', await viewer.mapOf(maps.heatmap));
    if (uncertainty) showFlag(ui.caseFlag, describeFlag(uncertainty, serviceFailureDice(m)));
    setState('done', `Segmented on the service in ${((performance.now() - t0) / 1000).toFixed(2)} s (job ${jobId}, model ${m.id} ${m.version})`);
  } catch (e) {
    if (e instanceof ServiceCancelled) setState('cancelled', 'Cancelled on the service; the scan and any previous mask are unchanged.');
    else fail('The service could not segment the scan', e);
  } finally {
    serviceRun = null;
  }
}

async function saveToService(): Promise<void> {
  if (!service || !serviceJob) return;
  try {
    const c = await service.client.saveCorrection(serviceJob.id, await viewer.maskNifti(), ui.serviceAuthor.value);
    const dice = c.dice.mean === null ? 'no labels' : `Dice to the model's mask ${c.dice.mean.toFixed(3)}`;
    ui.status.textContent = `Correction ${c.id} saved for job ${c.jobId} (model version ${c.modelVersion}; ${dice})`;
    document.body.dataset.saved = c.id;
  } catch (e) {
    fail('Cannot save the correction to the service', e);
  }
}

/** The Dice a service model's review rule was set to catch, from its model card. */
function serviceFailureDice(m: ServiceModel): number | undefined {
  const card = m.card as { calibration?: { triage?: { failureDice?: number } } } | null;
  return card?.calibration?.triage?.failureDice;
}

ui.serviceConnect.addEventListener('click', () => void connectService());
ui.serviceModel.addEventListener('change', () => {
  const m = service?.models.find((x) => x.id === ui.serviceModel.value);
  if (m) showModelPanel(ui, serviceCardRows(m), m.labels);
});
ui.serviceRun.addEventListener('click', () => void runOnService());
ui.serviceSave.addEventListener('click', () => void saveToService());

// ------------------------------------------------------------ editing

function setTool(next: Tool): void {
  tool = next;
  for (const b of ui.tools.querySelectorAll<HTMLButtonElement>('button')) b.setAttribute('aria-pressed', String(b.dataset.tool === tool));
  if (viewer.hasImage) viewer.setTool(tool, Number(ui.brushLabel.value || 1), Number(ui.brushSize.value), ui.brush3d.checked);
  refreshEditing();
}
ui.tools.addEventListener('click', (e) => {
  const t = (e.target as HTMLElement).closest('button')?.dataset.tool as Tool | undefined;
  if (t) setTool(t);
});
ui.brushLabel.addEventListener('change', () => setTool(tool));
ui.brushSize.addEventListener('change', () => setTool(tool));
ui.brush3d.addEventListener('change', () => setTool(tool));
ui.interpolate.addEventListener('click', () => interpolateSlices());

function interpolateSlices(): void {
  const label = Number(ui.brushLabel.value || 1);
  const { changed, slices } = viewer.interpolate(label);
  ui.status.textContent =
    slices.length < 2
      ? `Paint label ${label} on two or more slices of this view first (${slices.length} painted)`
      : `Interpolated label ${label} between slices ${slices.join(', ')}: ${changed} voxels changed`;
}
ui.undo.addEventListener('click', () => viewer.undo());
ui.redo.addEventListener('click', () => viewer.redo());
ui.saveMask.addEventListener('click', () => void saveMask());
ui.saveSeg.addEventListener('click', () => void saveSeg());

/** Offers bytes as a file download. */
function download(bytes: Uint8Array, name: string, type: string): void {
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function saveMask(): Promise<void> {
  try {
    const name = `${imageName}_mask.nii.gz`;
    download(await viewer.maskNifti(), name, 'application/gzip');
    ui.status.textContent = `Saved ${name}`;
  } catch (e) {
    fail('Cannot save the mask', e);
  }
}

/** The names of the mask's labels: the browser model's, else the service model's that made it. */
function maskLabelNames(): Record<string, string> {
  const fromService = serviceJob && service?.models.find((m) => m.id === serviceJob!.model);
  return (model?.info.labels as Record<string, string> | undefined) ?? fromService?.labels ?? {};
}

/** The model whose output the mask corrects, if any. */
function maskAlgorithm(): { name: string; version: string } | undefined {
  const fromService = serviceJob && service?.models.find((m) => m.id === serviceJob!.model);
  if (fromService) return { name: fromService.id, version: fromService.version };
  return model ? { name: model.name.replace(/\.onnx$/i, ''), version: `medseg ${model.info.medsegVersion}, fold ${model.info.fold}` } : undefined;
}

async function saveSeg(): Promise<void> {
  if (!dicomFiles) return;
  try {
    const { labels, grid } = await viewer.maskOnGrid();
    const seg = await maskAsDicomSeg(dicomFiles, labels, grid, {
      labelNames: maskLabelNames(),
      algorithm: maskAlgorithm(),
      author: ui.serviceAuthor.value.trim() || undefined,
    });
    const name = `${imageName}_seg.dcm`;
    download(seg.bytes, name, 'application/dicom');
    ui.status.textContent = `Saved ${name} (DICOM SEG, ${seg.segments} segment${seg.segments > 1 ? 's' : ''}, of series ${seg.seriesInstanceUID})`;
  } catch (e) {
    fail('Cannot save the mask as DICOM SEG', e);
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
  f: () => setTool('fill'),
  i: () => interpolateSlices(),
  u: () => toggleOverlay('uncertainty'),
  h: () => toggleOverlay('heatmap'),
  m: () => {
    ui.maskVisible.checked = !ui.maskVisible.checked;
    viewer.setMaskVisible(ui.maskVisible.checked);
  },
};
document.addEventListener('keydown', (e) => {
  // Letters typed into a text field are text; on a checkbox, a slider or a button they are shortcuts.
  const typing = e.target instanceof HTMLInputElement && !['checkbox', 'radio', 'range', 'button', 'file'].includes(e.target.type);
  if (typing || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement) return;
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
setState('empty', 'Open a scan (NIfTI, NRRD, a DICOM folder or zip) and an exported model (.onnx), or drop them onto the page.');
