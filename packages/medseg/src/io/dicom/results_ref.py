"""Independent reading of the SEG and RTSTRUCT files medseg writes: pydicom, numpy, scikit-image.

Usage: /usr/bin/python3 results_ref.py '<json list of jobs>' ; prints one JSON list of results.
Jobs:
  {"op": "seg", "file": SEG, "source": [source files], "out": raw float32 path}
      segments, frames (with where each frame's reference and position sit in
      the source, read by pydicom from the source files), pydicom's pixel_array.
  {"op": "rtstruct", "file": RTSTRUCT, "source": [source files], "out": raw float32 path}
      ROIs; every contour checked against the geometry of the image it references
      (distance of its points from that image's plane), rasterised with
      skimage.draw.polygon on that image's pixel centres and XOR-combined per
      ROI and image; masks written ROI by ROI, slices in source order along the
      normal, x fastest. Also each (ROI, slice)'s summed signed contour area in pixels.
"""
import json, sys
import numpy as np
import pydicom
from skimage.draw import polygon as draw_polygon


def code(item):
    if item is None:
        return None
    return {'value': str(item.CodeValue), 'scheme': str(item.CodingSchemeDesignator), 'meaning': str(item.CodeMeaning)}


def first(ds, keyword):
    seq = ds.get(keyword)
    return seq[0] if seq else None


def source_frames(files):
    """Every source frame: (sop, frame number or None, ipp, iop, pixel spacing, rows, cols)."""
    out = []
    for f in files:
        d = pydicom.dcmread(f, stop_before_pixels=True)
        sop = str(d.SOPInstanceUID)
        if 'PerFrameFunctionalGroupsSequence' in d:
            shared = d.SharedFunctionalGroupsSequence[0]
            for k, fr in enumerate(d.PerFrameFunctionalGroupsSequence):
                pick = lambda kw: (fr.get(kw) or shared.get(kw))[0]
                out.append({
                    'sop': sop, 'frame': k + 1,
                    'ipp': np.array([float(x) for x in pick('PlanePositionSequence').ImagePositionPatient]),
                    'iop': np.array([float(x) for x in pick('PlaneOrientationSequence').ImageOrientationPatient]),
                    'ps': [float(x) for x in pick('PixelMeasuresSequence').PixelSpacing],
                    'rows': int(d.Rows), 'cols': int(d.Columns),
                })
        else:
            out.append({
                'sop': sop, 'frame': None,
                'ipp': np.array([float(x) for x in d.ImagePositionPatient]),
                'iop': np.array([float(x) for x in d.ImageOrientationPatient]),
                'ps': [float(x) for x in d.PixelSpacing],
                'rows': int(d.Rows), 'cols': int(d.Columns),
            })
    normal = np.cross(out[0]['iop'][:3], out[0]['iop'][3:])
    out.sort(key=lambda s: float(np.dot(normal, s['ipp'])))
    return out


def seg(job):
    d = pydicom.dcmread(job['file'])
    src = source_frames(job['source']) if job.get('source') else []
    frames = []
    for f in d.PerFrameFunctionalGroupsSequence:
        ref = f.DerivationImageSequence[0].SourceImageSequence[0]
        pos = np.array([float(x) for x in f.PlanePositionSequence[0].ImagePositionPatient])
        at_ref = [i for i, s in enumerate(src) if s['sop'] == str(ref.ReferencedSOPInstanceUID)
                  and (s['frame'] is None or s['frame'] == int(ref.get('ReferencedFrameNumber', 0)))]
        at_pos = [i for i, s in enumerate(src) if np.abs(s['ipp'] - pos).max() < 1e-3]
        frames.append({
            'ref': str(ref.ReferencedSOPInstanceUID),
            'refFrame': int(ref.ReferencedFrameNumber) if 'ReferencedFrameNumber' in ref else None,
            'refClass': str(ref.ReferencedSOPClassUID),
            'segment': int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber),
            'position': pos.tolist(),
            'sliceOfReference': at_ref[0] if len(at_ref) == 1 else None,
            'sliceOfPosition': at_pos[0] if len(at_pos) == 1 else None,
        })
    segments = []
    for s in d.SegmentSequence:
        t = s.SegmentedPropertyTypeCodeSequence[0]
        alg = first(s, 'SegmentationAlgorithmIdentificationSequence')
        segments.append({
            'number': int(s.SegmentNumber),
            'label': str(s.SegmentLabel),
            'algorithmType': str(s.SegmentAlgorithmType),
            'algorithmName': str(s.get('SegmentAlgorithmName', '')),
            'category': code(s.SegmentedPropertyCategoryCodeSequence[0]),
            'type': code(t),
            'modifier': code(first(t, 'SegmentedPropertyTypeModifierCodeSequence')),
            'family': code(alg.AlgorithmFamilyCodeSequence[0]) if alg else None,
            'algorithmVersion': str(alg.AlgorithmVersion) if alg else None,
        })
    arr = d.pixel_array
    if int(d.NumberOfFrames) == 1:
        arr = arr[None]
    referenced = [str(i.ReferencedSOPInstanceUID) for i in d.ReferencedSeriesSequence[0].ReferencedInstanceSequence]
    return arr.astype(np.float64), {
        'sopClassUID': str(d.SOPClassUID),
        'segmentationType': str(d.SegmentationType),
        'fractionalType': str(d.get('SegmentationFractionalType', '')),
        'maxFractional': int(d.MaximumFractionalValue) if 'MaximumFractionalValue' in d else None,
        'numberOfFrames': int(d.NumberOfFrames),
        'segments': segments,
        'frames': frames,
        'referencedInstances': referenced,
        'charset': str(d.get('SpecificCharacterSet', '')),
    }


def rtstruct(job):
    d = pydicom.dcmread(job['file'])
    src = source_frames(job['source'])
    key = {(s['sop'], s['frame']): i for i, s in enumerate(src)}
    rows, cols = src[0]['rows'], src[0]['cols']
    names = {int(r.ROINumber): r for r in d.StructureSetROISequence}
    observations = {int(o.ReferencedROINumber): o for o in d.RTROIObservationsSequence}
    rois, masks = [], []
    worst_distance = 0.0
    bad_refs = 0
    for rc in d.ROIContourSequence:
        number = int(rc.ReferencedROINumber)
        mask = np.zeros((len(src), rows, cols), dtype=bool)
        area = {}
        n_contours = 0
        for c in rc.get('ContourSequence', []):
            n_contours += 1
            img = c.ContourImageSequence[0]
            frame = int(img.ReferencedFrameNumber) if 'ReferencedFrameNumber' in img else None
            z = key.get((str(img.ReferencedSOPInstanceUID), frame))
            if z is None:
                bad_refs += 1
                continue
            s = src[z]
            pts = np.array([float(x) for x in c.ContourData]).reshape(-1, 3)
            assert len(pts) == int(c.NumberOfContourPoints)
            assert str(c.ContourGeometricType) == 'CLOSED_PLANAR'
            row_dir, col_dir = s['iop'][:3], s['iop'][3:]
            normal = np.cross(row_dir, col_dir)
            rel = pts - s['ipp']
            worst_distance = max(worst_distance, float(np.abs(rel @ normal).max()))
            ci = rel @ row_dir / s['ps'][1]  # column index (x)
            ri = rel @ col_dir / s['ps'][0]  # row index (y)
            rr, cc = draw_polygon(ri, ci, shape=(rows, cols))
            m = np.zeros((rows, cols), dtype=bool)
            m[rr, cc] = True
            mask[z] ^= m
            a = 0.5 * float(np.sum(ci * np.roll(ri, -1) - np.roll(ci, -1) * ri))
            area[z] = area.get(z, 0.0) + a
        r = names[number]
        o = observations.get(number)
        alg = first(r, 'ROIDerivationAlgorithmIdentificationSequence')
        rois.append({
            'number': number,
            'name': str(r.ROIName),
            'generationAlgorithm': str(r.ROIGenerationAlgorithm),
            'frameOfReference': str(r.ReferencedFrameOfReferenceUID),
            'color': [int(x) for x in rc.ROIDisplayColor],
            'contours': n_contours,
            'code': code(first(o, 'RTROIIdentificationCodeSequence')) if o else None,
            'interpretedType': str(o.RTROIInterpretedType) if o else None,
            'algorithmName': str(alg.AlgorithmName) if alg else None,
            'signedArea': {str(k): v for k, v in area.items()},
        })
        masks.append(mask)
    ref = d.ReferencedFrameOfReferenceSequence[0]
    series = ref.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    return np.stack(masks).astype(np.float64), {
        'sopClassUID': str(d.SOPClassUID),
        'modality': str(d.Modality),
        'frameOfReference': str(ref.FrameOfReferenceUID),
        'referencedStudy': str(ref.RTReferencedStudySequence[0].ReferencedSOPInstanceUID),
        'referencedSeries': str(series.SeriesInstanceUID),
        'contourImages': [str(i.ReferencedSOPInstanceUID) for i in series.ContourImageSequence],
        'studyInstanceUID': str(d.StudyInstanceUID),
        'rois': rois,
        'worstPlaneDistance': worst_distance,
        'badReferences': bad_refs,
    }


def main():
    jobs = json.loads(sys.argv[1])
    results = []
    for job in jobs:
        if job['op'] == 'seg':
            vol, info = seg(job)
        elif job['op'] == 'rtstruct':
            vol, info = rtstruct(job)
        else:
            raise ValueError(job['op'])
        if job.get('out'):
            np.ascontiguousarray(vol, dtype='<f4').tofile(job['out'])
        results.append(info)
    print(json.dumps(results))


if __name__ == '__main__':
    main()
