// One uPlot chart per series: the min/max band of each aggregation window and
// its average as a line. uPlot comes from vendor/uPlot.iife.min.js (a classic
// script, window.uPlot) so the page needs no bundler.

const BAND = 'rgba(79, 195, 247, 0.22)';
const EDGE = 'rgba(79, 195, 247, 0.45)';
const AVG = '#4fc3f7';
const AXIS = { stroke: '#8a97a8', grid: { stroke: 'rgba(138, 151, 168, 0.12)', width: 1 }, ticks: { show: false }, font: '10px system-ui, sans-serif' };

export class SeriesChart {
  constructor(element, unit) {
    this.element = element;
    const uPlot = window.uPlot;
    this.plot = new uPlot({
      width: Math.max(120, element.clientWidth),
      height: 110,
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      scales: { x: { time: true } },
      axes: [
        // One line of HH:MM:SS (uPlot's default adds a date row the small card has no room for).
        { ...AXIS, space: 70, size: 24, values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString('en-GB')) },
        { ...AXIS, size: 48, space: 24, values: (u, ticks) => ticks.map((v) => +v.toPrecision(4)) },
      ],
      series: [
        {},
        { label: 'min', stroke: EDGE, width: 1, points: { show: false } },
        { label: 'max', stroke: EDGE, width: 1, points: { show: false } },
        { label: `average ${unit}`.trim(), stroke: AVG, width: 2, points: { show: false } },
      ],
      bands: [{ series: [2, 1], fill: BAND }],
    }, [[], [], [], []], element);
  }

  /** @param {import('./model.js').Series} s */
  update(s) {
    this.plot.setData([s.t, s.min, s.max, s.avg]);
  }

  resize() {
    this.plot.setSize({ width: Math.max(120, this.element.clientWidth), height: 110 });
  }
}
