import './base.css';
import './requests.css';
