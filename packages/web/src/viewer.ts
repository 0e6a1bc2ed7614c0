/**
 * The scan on screen through NiiVue: open a local NIfTI or NRRD file, the
 * views (axial, coronal, sagittal, all three with 3D, 3D alone), the display
 * window, and the mask as NiiVue's drawing layer, so that a predicted mask
 * and a painted correction are one bitmap: per-label colours, opacity and
 * visibility, brush and eraser per label, undo/redo, and saving it as NIfTI
 * on the image's own voxel grid.
 */
import { Niivue, NVImage, SLICE_TYPE } from '@niivue/niivue';
import { decomposeAffine, flipLpsRas } from '@medseg/medseg/io/geometry';
import type { Grid } from '@medseg/medseg/io/same-voxels';
import type { LabelColormap } from './label-colors.ts';
import { changedSlices, extendStroke3d, interpolateLabel, type Dims, type SliceAxis } from './mask-edit.ts';
import type { IntensityStats } from './window-presets.ts';

export type ViewName = 'axial' | 'coronal' | 'sagittal' | 'multiplanar' | 'render';

const SLICE_TYPES: Record<ViewName, SLICE_TYPE> = {
  axial: SLICE_TYPE.AXIAL,
  coronal: SLICE_TYPE.CORONAL,
  sagittal: SLICE_TYPE.SAGITTAL,
  multiplanar: SLICE_TYPE.MULTIPLANAR,
  render: SLICE_TYPE.RENDER,
};

/** brush and eraser paint under the pointer; fill paints the inside of the outline drawn. */
export type Tool = 'navigate' | 'brush' | 'eraser' | 'fill';

/** The axis a view's slices are taken across (the 3D and multiplanar views: axial). */
const VIEW_AXIS: Record<ViewName, SliceAxis> = { axial: 2, coronal: 1, sagittal: 0, multiplanar: 2, render: 2 };

/** An opened scan's voxels as the inference pipeline takes them. */
export interface ScanVoxels {
  /** float32 [C, Z, Y, X], x fastest, with the header's scaling applied. */
  image: Float32Array;
  shape: [number, number, number];
  /** mm, [z, y, x]. */
  spacing: [number, number, number];
}

/** The float maps shown over the scan: the model's uncertainty and an explanation heat map (Grad-CAM, attention, occlusion). */
export type OverlayKind = 'uncertainty' | 'heatmap';

/** Each overlay's NiiVue colour map: blue-green for uncertainty, black-red-yellow for a heat map, so neither reads as a label colour. */
const OVERLAY_COLORMAPS: Record<OverlayKind, string> = { uncertainty: 'winter', heatmap: 'hot' };

/** Below this fraction of an overlay's maximum a voxel is transparent, so a map shows where it is high, not a tinted scan. */
const OVERLAY_FLOOR = 0.1;

/** The first `count` voxels of an image as float32 with the header's scl_slope / scl_inter applied. */
function scaledValues(img: NVImage, count: number): Float32Array {
  const hdr = img.hdr!;
  const raw = img.img as ArrayLike<number>;
  const slope = Number.isFinite(hdr.scl_slope) && hdr.scl_slope !== 0 ? hdr.scl_slope : 1;
  const inter = Number.isFinite(hdr.scl_inter) ? hdr.scl_inter : 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Number(raw[i]!) * slope + inter;
  return out;
}

/** How many mask states undo keeps. */
const HISTORY = 32;

export class ScanViewer {
  private image: NVImage | null = null;
  private undoStack: Uint8Array[] = [];
  private redoStack: Uint8Array[] = [];
  /** The drawing as it was after the last change (what undo returns to from the next change). */
  private current: Uint8Array | null = null;
  private opacity = 0.6;
  private visible = true;
  private view: ViewName = 'multiplanar';
  private pen = { label: 1, size: 3, sphere: false };
  /** Slices painted per axis and label since the mask was set: what interpolation fills between. */
  private painted = new Map<string, Set<number>>();
  private overlays = new Map<OverlayKind, { image: NVImage; opacity: number; visible: boolean }>();
  /** Called after every change of the mask (painting, undo, redo, a new mask). */
  onMaskChange: () => void = () => {};

  private constructor(readonly nv: Niivue) {
    nv.addEventListener('drawingChanged', (e) => {
      if ((e as CustomEvent<{ action: string }>).detail.action === 'draw') this.recordStroke();
    });
  }

  static async create(canvas: HTMLCanvasElement): Promise<ScanViewer> {
    const nv = new Niivue({
      backColor: [0, 0, 0, 1],
      dragAndDropEnabled: false,
      show3Dcrosshair: true,
      crosshairColor: [0.3, 0.75, 1, 0.7],
      crosshairWidth: 1,
      isColorbar: false,
      loadingText: 'Open a NIfTI or NRRD scan',
    });
    await nv.attachToCanvas(canvas);
    return new ScanViewer(nv);
  }

  get hasImage(): boolean {
    return this.image !== null;
  }

  get hasMask(): boolean {
    return this.nv.drawBitmap !== null;
  }

  /** Replaces the scan (and drops any mask) with a local file; its extension names the format. */
  async open(file: File): Promise<void> {
    const image = await NVImage.loadFromFile({ file, name: file.name, colormap: 'gray' });
    this.nv.closeDrawing();
    for (const v of [...this.nv.volumes]) this.nv.removeVolume(v);
    this.nv.addVolume(image);
    this.image = image;
    this.overlays.clear();
    this.resetHistory(null);
  }

  /**
   * Shows a float map on the scan's grid ([Z, Y, X], x fastest) as an overlay
   * of its kind, replacing the previous one; null removes it. Voxels below
   * OVERLAY_FLOOR of the map's maximum are transparent.
   */
  setOverlay(kind: OverlayKind, values: Float32Array | null, o: { visible?: boolean; opacity?: number } = {}): void {
    const old = this.overlays.get(kind);
    if (old) this.nv.removeVolume(old.image);
    this.overlays.delete(kind);
    if (!values) return;
    const scan = this.need();
    const d = scan.dims!;
    if (values.length !== d[1]! * d[2]! * d[3]!) throw new Error(`the ${kind} map has ${values.length} voxels; the scan ${d[1]} × ${d[2]} × ${d[3]}`);
    let max = 0;
    for (const v of values) if (v > max) max = v;
    const image = scan.clone();
    const hdr = image.hdr!;
    hdr.dims = [3, d[1]!, d[2]!, d[3]!, 1, 1, 1, 1];
    hdr.datatypeCode = 16;
    hdr.numBitsPerVoxel = 32;
    hdr.scl_slope = 1;
    hdr.scl_inter = 0;
    image.img = values;
    image.name = kind;
    image.colormap = OVERLAY_COLORMAPS[kind];
    image.cal_min = max > 0 ? OVERLAY_FLOOR * max : 1;
    image.cal_max = max > 0 ? max : 1;
    image.global_min = 0;
    image.global_max = max;
    const entry = { image, opacity: o.opacity ?? 0.7, visible: o.visible ?? true };
    image.opacity = entry.visible ? entry.opacity : 0;
    this.overlays.set(kind, entry);
    this.nv.addVolume(image);
  }

  hasOverlay(kind: OverlayKind): boolean {
    return this.overlays.has(kind);
  }

  setOverlayVisible(kind: OverlayKind, visible: boolean): void {
    const e = this.overlays.get(kind);
    if (!e) return;
    e.visible = visible;
    this.nv.setOpacity(this.nv.getVolumeIndexByID(e.image.id), visible ? e.opacity : 0);
  }

  setOverlayOpacity(kind: OverlayKind, opacity: number): void {
    const e = this.overlays.get(kind);
    if (!e) return;
    e.opacity = opacity;
    if (e.visible) this.nv.setOpacity(this.nv.getVolumeIndexByID(e.image.id), opacity);
  }

  /** A float map file on the scan's grid (a heat map from `medseg explain`, an uncertainty map from the service) as values in the scan's voxel order. */
  async mapOf(file: File): Promise<Float32Array> {
    const scan = this.need().hdr!;
    const map = await NVImage.loadFromFile({ file, name: file.name });
    const hdr = map.hdr!;
    const size = (h: typeof hdr) => h.dims.slice(1, 4).join(' × ');
    if (size(hdr) !== size(scan)) throw new Error(`the map's grid ${size(hdr)} is not the scan's ${size(scan)}`);
    const out = scaledValues(map, hdr.dims[1]! * hdr.dims[2]! * hdr.dims[3]!);
    // A map's NaNs (outside what was explained) show as nothing.
    for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i]!)) out[i] = 0;
    return out;
  }

  private need(): NVImage {
    if (!this.image) throw new Error('no scan open');
    return this.image;
  }

  /** The first `channels` frames of the scan as [C, Z, Y, X] float32 with scl_slope / scl_inter applied. */
  voxels(channels: number): ScanVoxels {
    const img = this.need();
    const hdr = img.hdr!;
    const [, nx = 1, ny = 1, nz = 1] = hdr.dims;
    const n = nx * ny * nz;
    const frames = Math.max(1, hdr.dims[4] ?? 1);
    if (channels > frames) throw new Error(`the model takes ${channels} channels; the scan has ${frames} volume(s)`);
    const image = scaledValues(img, channels * n);
    const [, dx = 1, dy = 1, dz = 1] = hdr.pixDims.map(Math.abs);
    return { image, shape: [nz, ny, nx], spacing: [dz, dy, dx] };
  }

  /** The header's voxel size and grid, for display. */
  describe(): string {
    const hdr = this.need().hdr!;
    const dims = hdr.dims.slice(1, 1 + hdr.dims[0]!).join(' × ');
    const mm = hdr.pixDims
      .slice(1, 4)
      .map((v) => Math.abs(v).toPrecision(3))
      .join(' × ');
    return `${dims} voxels, ${mm} mm`;
  }

  stats(): IntensityStats {
    const img = this.need();
    return {
      robustMin: img.robust_min ?? img.global_min!,
      robustMax: img.robust_max ?? img.global_max!,
      globalMin: img.global_min!,
      globalMax: img.global_max!,
    };
  }

  setView(view: ViewName): void {
    this.view = view;
    this.nv.setSliceType(SLICE_TYPES[view]);
  }

  setWindow(min: number, max: number): void {
    const img = this.need();
    img.cal_min = min;
    img.cal_max = max;
    this.nv.updateGLVolume();
  }

  /** Shows labels (the scan's voxel order, [Z, Y, X] x fastest) as the mask, coloured per label; editing history starts here. */
  /** A label map file on the scan's grid (the service's result) as voxels in the scan's order. */
  async labelsOf(file: File): Promise<Uint8Array> {
    const scan = this.need().hdr!;
    const labels = await NVImage.loadFromFile({ file, name: file.name });
    const hdr = labels.hdr!;
    const size = (h: typeof hdr) => h.dims.slice(1, 4).join(' × ');
    if (size(hdr) !== size(scan)) throw new Error(`the label map's grid ${size(hdr)} is not the scan's ${size(scan)}`);
    return Uint8Array.from(labels.img as ArrayLike<number>);
  }

  setMask(labels: Uint8Array, colormap: LabelColormap): void {
    const img = this.need();
    const drawing = img.clone();
    const hdr = drawing.hdr!;
    hdr.dims = [3, hdr.dims[1]!, hdr.dims[2]!, hdr.dims[3]!, 1, 1, 1, 1];
    hdr.datatypeCode = 2;
    hdr.numBitsPerVoxel = 8;
    hdr.scl_slope = 1;
    hdr.scl_inter = 0;
    drawing.img = labels;
    if (!this.nv.loadDrawing(drawing)) throw new Error('the mask does not fit the scan grid');
    this.setColormap(colormap);
    this.applyOpacity();
    this.resetHistory(this.nv.drawBitmap);
    this.onMaskChange();
  }

  setColormap(colormap: LabelColormap): void {
    // NiiVue takes a colour table object where its type names a colormap's name.
    this.nv.setDrawColormap(colormap as unknown as string);
  }

  setMaskVisible(visible: boolean): void {
    this.visible = visible;
    this.applyOpacity();
  }

  setMaskOpacity(opacity: number): void {
    this.opacity = opacity;
    this.applyOpacity();
  }

  private applyOpacity(): void {
    this.nv.setDrawOpacity(this.visible ? this.opacity : 0);
  }

  /**
   * navigate: clicks move the crosshair; brush paints `label`; eraser paints
   * background; fill paints the inside of the outline drawn. `sphere`: a
   * brush or eraser stroke reaches the neighbouring slices as a ball of the
   * brush's size.
   */
  setTool(tool: Tool, label: number, size: number, sphere = false): void {
    if (tool !== 'navigate' && !this.nv.drawBitmap) this.nv.createEmptyDrawing();
    if (tool !== 'navigate' && !this.current) this.resetHistory(this.nv.drawBitmap);
    this.pen = { label, size, sphere: sphere && tool !== 'fill' };
    this.nv.opts.penSize = size;
    this.nv.opts.isFilledPen = tool === 'fill';
    this.nv.setPenValue(tool === 'eraser' ? 0 : label, tool === 'fill');
    this.nv.setDrawingEnabled(tool !== 'navigate');
  }

  private resetHistory(bitmap: Uint8Array | null): void {
    this.painted.clear();
    this.undoStack = [];
    this.redoStack = [];
    this.current = bitmap ? bitmap.slice() : null;
  }

  /** The drawing bitmap's grid (NiiVue's voxel order of the scan: x fastest). */
  private dims(): Dims {
    const d = this.need().dims!;
    return [d[1]!, d[2]!, d[3]!];
  }

  /** After a stroke: the slice it was painted on (across the view's axis when several fit), made spherical when asked. */
  private afterStroke(before: Uint8Array, now: Uint8Array): void {
    const dims = this.dims();
    const preferred = VIEW_AXIS[this.view];
    const axes = [preferred, ...([2, 1, 0] as SliceAxis[]).filter((a) => a !== preferred)];
    for (const axis of axes) {
      const slices = changedSlices(before, now, dims, axis);
      if (slices.size !== 1) continue;
      const [slice, labels] = [...slices][0]!;
      for (const label of labels) {
        const key = `${axis}:${label}`;
        if (!this.painted.has(key)) this.painted.set(key, new Set());
        this.painted.get(key)!.add(slice);
      }
      if (this.pen.sphere && labels.size === 1) {
        if (extendStroke3d(before, now, dims, axis, slice, [...labels][0]!, this.pen.size / 2) > 0) this.nv.refreshDrawing(true);
      }
      return;
    }
  }

  /**
   * Fills the slices between those painted with `label` across the current
   * view's axis (shape-based interpolation, mask-edit.ts), as one undoable
   * change; returns the voxels changed and the slices used.
   */
  interpolate(label: number): { changed: number; slices: number[] } {
    const bitmap = this.nv.drawBitmap;
    const axis = VIEW_AXIS[this.view];
    const slices = [...(this.painted.get(`${axis}:${label}`) ?? [])].sort((a, b) => a - b);
    if (!bitmap || slices.length < 2) return { changed: 0, slices };
    let changed = 0;
    for (let i = 1; i < slices.length; i++) changed += interpolateLabel(bitmap, this.dims(), axis, label, slices[i - 1]!, slices[i]!);
    if (changed) {
      this.nv.refreshDrawing(true);
      this.recordStroke(false);
    }
    return { changed, slices };
  }

  private recordStroke(fromPen = true): void {
    const now = this.nv.drawBitmap;
    if (!now) return;
    if (fromPen && this.current) this.afterStroke(this.current, now);
    if (this.current) this.undoStack.push(this.current);
    if (this.undoStack.length > HISTORY) this.undoStack.shift();
    this.redoStack = [];
    this.current = now.slice();
    this.onMaskChange();
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }

  private restore(bitmap: Uint8Array): void {
    this.current = bitmap;
    this.nv.drawBitmap = bitmap.slice();
    this.nv.refreshDrawing(true);
    this.onMaskChange();
  }

  undo(): void {
    const previous = this.undoStack.pop();
    if (!previous || !this.current) return;
    this.redoStack.push(this.current);
    this.restore(previous);
  }

  redo(): void {
    const next = this.redoStack.pop();
    if (!next || !this.current) return;
    this.undoStack.push(this.current);
    this.restore(next);
  }

  /**
   * The mask's labels in the order of the NIfTI maskNifti writes (x fastest)
   * and that file's grid in LPS mm, as medseg reads it: read back from the
   * file itself, so a SEG made from it holds what the NIfTI download holds.
   */
  async maskOnGrid(): Promise<{ labels: Uint8Array; grid: Grid }> {
    const bytes = await this.maskNifti();
    const saved = await NVImage.loadFromFile({ file: new File([bytes as Uint8Array<ArrayBuffer>], 'mask.nii.gz'), name: 'mask.nii.gz' });
    const hdr = saved.hdr!;
    const size = [hdr.dims[1]!, hdr.dims[2]!, hdr.dims[3]!] as Grid['size'];
    const geometry = decomposeAffine(flipLpsRas(hdr.affine.flat()), size, 'the mask');
    return { labels: Uint8Array.from(saved.img as ArrayLike<number>), grid: { size, ...geometry } };
  }

  /** The mask as a gzipped NIfTI file with the scan's header (its own grid and orientation). */
  async maskNifti(): Promise<Uint8Array> {
    const bitmap = this.nv.drawBitmap;
    if (!bitmap) throw new Error('no mask to save');
    return this.need().saveToUint8Array('mask.nii.gz', bitmap);
  }
}
