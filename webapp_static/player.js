// The page's 3-D player (issue 21): the dance's skinned .glb, played by three.js in step with a song.
//
// Our own glue around three.js (webapp_static/vendor/three, see its README.md): it loads whatever
// .glb the page offers for download (the link in #motion-files), so the player and the download are
// always the same file, and shows it on a floor under an orbit camera. The animation does not run on
// its own clock: every frame it is posed at the current time of the player's <audio> element, which
// holds the song the dance was made for, so play, pause, seek and scrubbing keep the two together.
// Past the dance's end (a song longer than the dance) the body holds its last pose.
//
// State for people and tests, on the player's root element (data-*): state = empty | loading |
// ready | error, src = the .glb loaded, duration (s), time = the animation time last drawn (s),
// audio = the song's URL, audioReady = 1 once the song can play. `message` says the same in words.

import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

// The video's framing (renderer/scene.py): 50° vertical field of view, the camera 3.6 m in front of
// and 0.55 m above a point at 0.95 m over the floor, where the dancer is.
const FOV = 50;
const LOOK_HEIGHT = 0.95;
const CAMERA_OFFSET = new THREE.Vector3(0.0, 0.55, 3.6);
const FLOOR_TILE = 0.5;                      // metres per checker square, as in the video
const FLOOR_GREYS = [72, 52];
const FLOOR_SIZE = 40;                       // metres
const POLL_MS = 250;                         // how often the page's download list is looked at
const DOWNLOAD_LINKS = '#motion-files a[download]';
const SONG_LINKS = ['#song a[href]', '#video-song a[href]'];   // the audio input, or a video's soundtrack

function checkerTexture() {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 2;
  const g = canvas.getContext('2d');
  for (let i = 0; i < 4; i++) {
    const grey = FLOOR_GREYS[(i + (i >> 1)) % 2];
    g.fillStyle = `rgb(${grey},${grey},${grey})`;
    g.fillRect(i % 2, i >> 1, 1, 1);
  }
  const texture = new THREE.CanvasTexture(canvas);
  texture.magFilter = THREE.NearestFilter;
  texture.wrapS = texture.wrapT = THREE.RepeatWrapping;
  texture.repeat.set(FLOOR_SIZE / (2 * FLOOR_TILE), FLOOR_SIZE / (2 * FLOOR_TILE));
  texture.colorSpace = THREE.SRGBColorSpace;
  return texture;
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

class DancePlayer {
  constructor(root) {
    this.root = root;
    this.view = root.querySelector('.dance-player-view');
    this.audio = root.querySelector('audio');
    this.status = root.querySelector('.dance-player-status');
    this.src = null;
    this.mixer = null;
    this.duration = 0;
    this.drawnTime = -1;
    this.dirty = true;
    this.loads = 0;
    this.set({ state: 'empty' });

    this.renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.renderer.setPixelRatio(1);
    this.view.appendChild(this.renderer.domElement);

    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x000000);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x404040, 1.1));
    const key = new THREE.DirectionalLight(0xffffff, 1.8);
    key.position.set(1.5, 4.0, 3.0);
    this.scene.add(key);
    const fill = new THREE.DirectionalLight(0xffffff, 0.6);
    fill.position.set(-3.0, 2.0, 1.0);
    this.scene.add(fill);
    const floor = new THREE.Mesh(new THREE.PlaneGeometry(FLOOR_SIZE, FLOOR_SIZE),
                                 new THREE.MeshBasicMaterial({ map: checkerTexture() }));
    floor.rotation.x = -Math.PI / 2;
    floor.name = 'floor';
    this.scene.add(floor);

    this.camera = new THREE.PerspectiveCamera(FOV, 1, 0.05, 100);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.maxPolarAngle = Math.PI * 0.495;        // stay above the floor
    this.controls.minDistance = 0.5;
    this.controls.maxDistance = 15;
    this.controls.addEventListener('change', () => { this.dirty = true; });
    this.centre = new THREE.Vector3(0, LOOK_HEIGHT, 0);
    this.resetView();

    root.querySelector('.dance-player-reset').addEventListener('click', () => this.resetView());
    new ResizeObserver(() => this.resize()).observe(this.view);
    this.resize();
    this.audio.addEventListener('canplay', () => this.set({ audioReady: '1' }));
    this.audio.addEventListener('emptied', () => this.set({ audioReady: '' }));
    setInterval(() => this.lookForDance(), POLL_MS);
    this.lookForDance();
    const frame = () => { this.draw(); requestAnimationFrame(frame); };
    requestAnimationFrame(frame);
  }

  set(values) {
    for (const [k, v] of Object.entries(values)) this.root.dataset[k] = v;
    if ('message' in values) this.status.textContent = values.message;
  }

  resetView() {
    this.controls.target.copy(this.centre);
    this.camera.position.copy(this.centre).add(CAMERA_OFFSET);
    this.controls.update();
    this.dirty = true;
  }

  resize() {
    const width = Math.max(1, this.view.clientWidth), height = Math.max(1, this.view.clientHeight);
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this.dirty = true;
  }

  // The page offers a (new) .glb for download: play that one, with the song it was made for.
  lookForDance() {
    const link = [...document.querySelectorAll(DOWNLOAD_LINKS)].find(a => /\.glb$/i.test(a.getAttribute('download') || ''));
    if (!link || !link.href || link.href === this.src) return;
    const song = SONG_LINKS.map(s => document.querySelector(s)).find(a => a && a.href);
    this.load(link.href, song ? song.href : null);
  }

  load(url, songUrl) {
    const attempt = ++this.loads;
    this.src = url;
    this.set({ state: 'loading', src: url, message: 'Loading the dance into the 3-D player…' });
    if (songUrl && songUrl !== this.audio.src) {
      this.audio.src = songUrl;
      this.set({ audio: songUrl });
    }
    new GLTFLoader().load(url, gltf => {
      if (attempt !== this.loads) return;                       // a newer dance came meanwhile
      this.show(gltf);
    }, undefined, error => {
      if (attempt !== this.loads) return;
      this.clear();
      const why = (error && error.message) || String(error);
      this.set({ state: 'error', message: `The 3-D player could not load this dance (${why}). The video ` +
                                          'follows, and the motion files can still be downloaded.' });
    });
  }

  clear() {
    if (this.model) this.scene.remove(this.model);
    this.model = null;
    this.mixer = null;
    this.dirty = true;
  }

  show(gltf) {
    const clip = gltf.animations[0];
    if (!clip) {
      this.clear();
      this.set({ state: 'error', message: 'The 3-D player could not load this dance (the file holds no ' +
                                          'animation). The video follows.' });
      return;
    }
    this.clear();
    this.model = gltf.scene;
    this.model.traverse(o => { if (o.isMesh) o.frustumCulled = false; });   // skinned: bounds move
    this.scene.add(this.model);
    this.mixer = new THREE.AnimationMixer(this.model);
    // played once and held at its end: at the clip's duration a repeating loop would wrap to the first pose
    const action = this.mixer.clipAction(clip);
    action.setLoop(THREE.LoopOnce, 1);
    action.clampWhenFinished = true;
    action.play();
    this.duration = clip.duration;
    // Aim at where the dance happens: the pelvis's mean floor position.
    const pelvis = clip.tracks.find(t => t.name.endsWith('.position'));
    this.centre.set(0, LOOK_HEIGHT, 0);
    if (pelvis) {
      const v = pelvis.values, n = v.length / 3;
      let x = 0, z = 0;
      for (let i = 0; i < n; i++) { x += v[3 * i]; z += v[3 * i + 2]; }
      this.centre.set(x / n, LOOK_HEIGHT, z / n);
    }
    this.resetView();
    this.drawnTime = -1;
    this.draw();
    this.set({ state: 'ready', duration: this.duration.toFixed(3),
               message: `The dance in 3-D (${clock(this.duration)}): play the song below; drag to turn around ` +
                        'the dancer, scroll to zoom.' });
  }

  draw() {
    let time = this.drawnTime;
    if (this.mixer) {
      time = Math.min(this.audio.currentTime || 0, this.duration);
      if (time !== this.drawnTime) {
        this.mixer.setTime(time);
        this.dirty = true;
      }
    }
    if (!this.dirty) return;
    this.renderer.render(this.scene, this.camera);
    this.dirty = false;
    if (this.mixer && time !== this.drawnTime) {
      this.drawnTime = time;
      this.set({ time: time.toFixed(4) });
      const past = this.audio.currentTime > this.duration + 0.05;
      if (past !== (this.root.dataset.ended === '1')) {
        this.set({ ended: past ? '1' : '', message: past ? `The dance ended at ${clock(this.duration)}; the song ` +
                   'plays on.' : `The dance in 3-D (${clock(this.duration)}): play the song below; drag to turn ` +
                   'around the dancer, scroll to zoom.' });
      }
    }
  }
}

export function mount(root) {
  if (root.dancePlayer) return root.dancePlayer;
  try {
    root.dancePlayer = new DancePlayer(root);
  } catch (error) {
    root.dataset.state = 'error';
    root.querySelector('.dance-player-status').textContent =
      `This browser cannot show the 3-D player (${error.message || error}); the video follows.`;
  }
  return root.dancePlayer;
}
